//! drand beacon verification (branch `chain`: being written).
