//! (branch challenges: being written)
