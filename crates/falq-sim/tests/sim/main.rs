//! End-to-end tests of the simulator over HTTP on 127.0.0.1, with reqwest as the client.

mod common;
mod counters;
mod families;
mod faults;
mod media;
mod protocol;
