//! The fuzz check's negative control: panics on inputs starting with `canary`, so
//! `.ci/checks/fuzz.sh` can prove a failing target fails the check. Not a real target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(!data.starts_with(b"canary"), "the canary input was found");
});
