//! drand HTTP client (branch `chain`: being written).
