//! Subcommands of the `redis-rescue` binary, one module each.

pub mod bundle;
pub mod layout;
pub mod progress;
pub mod recover;
pub mod verify;
