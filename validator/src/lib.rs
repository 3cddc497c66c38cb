//! grail validator library and the `grail` command-line tool.
pub mod cli;
