//! Unit tests of the walker's readers over synthetic heaps laid out by several builds'
//! profiles (see [`super::testheap`]): one test body per behaviour, run for each build.

mod census;
mod dict;
mod hashtable;
mod object;
mod stream;
