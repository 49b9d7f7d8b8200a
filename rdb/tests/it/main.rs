//! The integration tests of the rdb crate, in one binary (`cargo test -p rdb --test it`):
//! each module was a test binary of its own.

mod real_redis;
mod roundtrip_props;
