//! Heap allocations per webhook on the path without HTTP (parse → step → serialize), counted
//! by an instrumented global allocator: the figure behind "≤ 20 allocations per webhook".
//!
//! Each path runs `ROUNDS` times on fresh inputs made outside the counted region (a session
//! positioned at the main menu, as in `benches/step.rs`); what it produces is dropped outside
//! it too. The counts are exact and do not depend on the machine.
//!
//! `cargo bench -p switchboard-benches --bench allocations`

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchboard_benches::{Fixtures, call_action, call_received_path, event_of, key_press_path};
use switchboard_flow::step;
use switchboard_protocol::webhook::Webhook;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 1000;

/// Allocations and bytes per run of `work` on inputs from `input`.
fn count<I, O>(mut input: impl FnMut() -> I, mut work: impl FnMut(I) -> O) -> (f64, f64) {
    let inputs: Vec<I> = (0..ROUNDS).map(|_| input()).collect();
    let mut outputs = Vec::with_capacity(ROUNDS);
    let region = Region::new(GLOBAL);
    for input in inputs {
        outputs.push(work(input));
    }
    let change = region.change();
    drop(outputs);
    (
        change.allocations as f64 / ROUNDS as f64,
        change.bytes_allocated as f64 / ROUNDS as f64,
    )
}

fn main() {
    let Fixtures {
        now,
        flow,
        flows,
        main_menu,
        key_press,
        received,
        ..
    } = Fixtures::new();

    let rows = [
        (
            "parse/action_completed",
            count(|| (), |()| Webhook::from_slice(&key_press)),
        ),
        (
            "step/menu_key",
            count(
                || (main_menu.clone(), call_action(&key_press)),
                |(mut state, action)| {
                    let reply = step(&flow, &mut state, event_of(&action), now);
                    (state, reply, action)
                },
            ),
        ),
        (
            "webhook/menu_key",
            count(
                || main_menu.clone(),
                |state| key_press_path(&flow, state, &key_press, now),
            ),
        ),
        (
            "webhook/call_received",
            count(|| (), |()| call_received_path(&flows, &received, now)),
        ),
    ];
    println!("heap allocations per webhook (mean of {ROUNDS} runs each)");
    println!("| path | allocations | bytes allocated |");
    println!("|---|---:|---:|");
    for (name, (allocations, bytes)) in rows {
        println!("| {name} | {allocations:.1} | {bytes:.0} |");
    }
}
