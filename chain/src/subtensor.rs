//! subtensor JSON-RPC client (branch `chain`: being written).
