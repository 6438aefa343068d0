//! Where something breaks: faults injected between the worker and its servers or its gateway,
//! the worker's own faults, hostile mail and hostile servers, and every fuzz seed and past
//! finding (`fuzz_regressions`). `restart` stops and starts a private testbed instance on fixed
//! ports (`TESTBED_PORT_OFFSET=3000`, 13xxx).

#[path = "../support/mod.rs"]
mod support;

mod fuzz_regressions;
mod gateway;
mod hostile;
mod hostile_servers;
mod imap;
mod pool;
mod restart;
mod sigterm;
mod table;
mod worker;
