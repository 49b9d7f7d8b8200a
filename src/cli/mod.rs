//! Subcommands of the `redis-rescue` binary, one module each.

pub mod recover;
