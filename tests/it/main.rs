//! The integration tests, in one binary (`cargo test --test it`): each module was a test
//! binary of its own. `common` is the shared harness (servers, the dataset, the truth,
//! ELF and process helpers, running redis-rescue); `matrix` holds the version matrix and its
//! own harness (builds, the per-version filler, the oracle). A test is named by its module:
//! `cargo test --test it -- recover_redis70::` runs one former file.

mod bundle;
mod code_refs;
mod common;
mod compressed_cores;
mod damage_campaign;
mod decode_props;
mod derive_dwarf;
mod derive_profiles;
mod eviction;
mod functions;
mod fuzz_regressions;
mod live_outputs;
mod live_rescue;
mod lua_scripts;
mod matrix;
mod no_symbols;
mod outputs;
mod page_cache;
mod recover_more_cores;
mod recover_redis70;
mod restore_to;
mod slot_migration;
mod streams;
mod verify_docker;
mod verify_matrix;
mod verify_reader;
mod verify_redis70;
