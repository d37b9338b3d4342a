//! Runs one path of `benches/step.rs` a fixed number of times, for counting its instructions
//! under callgrind: on a shared, noisy machine a time moves by 10-20 % between runs, an
//! instruction count does not.
//!
//! ```text
//! cargo build --release -p switchboard-benches --example instructions
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='instructions::measured*' \
//!     target/release/examples/instructions webhook/menu_key 10000
//! ```
//! Paths: `parse/action_completed`, `step/menu_key`, `webhook/menu_key`,
//! `webhook/call_received` (the same work as the criterion benches of those names). Inputs are
//! made before and outputs dropped after each call of `measured`, the only function whose
//! instructions are collected: callgrind's total `Ir` divided by the count is the instructions
//! of one run of the path. Without callgrind it just runs and prints what it ran.

use std::hint::black_box;
use std::process::ExitCode;

use switchboard_benches::{Fixtures, call_action, call_received_path, event_of, key_press_path};
use switchboard_flow::step;
use switchboard_protocol::webhook::Webhook;

/// One run of the path: the only code callgrind collects (`--toggle-collect`).
#[inline(never)]
fn measured<I, O>(work: &mut impl FnMut(I) -> O, input: I) -> O {
    work(black_box(input))
}

/// Runs `work` `count` times, each on a fresh input from `input`.
fn repeat<I, O>(count: usize, mut input: impl FnMut() -> I, mut work: impl FnMut(I) -> O) {
    for _ in 0..count {
        let input = input();
        let output = measured(&mut work, input);
        drop(black_box(output));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, count) = match args.as_slice() {
        [path, count] => match count.parse::<usize>() {
            Ok(count) => (path.as_str(), count),
            Err(_) => {
                eprintln!("instructions: the count {count:?} is not a whole number");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: instructions PATH COUNT (PATH: parse/action_completed, parse/session_summary, step/menu_key, webhook/menu_key, webhook/call_received)"
            );
            return ExitCode::from(2);
        }
    };
    let Fixtures {
        now,
        flow,
        flows,
        main_menu,
        key_press,
        received,
        summary,
        ..
    } = Fixtures::new();
    match path {
        "parse/action_completed" => repeat(count, || (), |()| Webhook::from_slice(&key_press)),
        "parse/session_summary" => repeat(count, || (), |()| Webhook::from_slice(&summary)),
        "step/menu_key" => repeat(
            count,
            || (main_menu.clone(), call_action(&key_press)),
            |(mut state, action)| {
                let reply = step(&flow, &mut state, event_of(&action), now);
                (state, reply, action)
            },
        ),
        "webhook/menu_key" => repeat(
            count,
            || main_menu.clone(),
            |state| key_press_path(&flow, state, &key_press, now),
        ),
        "webhook/call_received" => repeat(
            count,
            || (),
            |()| call_received_path(&flows, &received, now),
        ),
        other => {
            eprintln!("instructions: no path {other:?}");
            return ExitCode::from(2);
        }
    }
    println!("{path}: {count} runs");
    ExitCode::SUCCESS
}
