//! Tests of [`super::VirtualCall`]: examples and properties.

mod examples {
    use switchboard_protocol::{
        CallLeg, DigitCount, Msisdn, Say, SessionStatus, Text, VoiceProfile, Webhook,
    };

    use crate::call::*;
    use crate::caller::{CallerModel, ScriptEntry, Walk};

    fn voice() -> VoiceProfile {
        VoiceProfile::new("en-US-BenjaminRUS").unwrap()
    }

    fn config(caller: CallerModel) -> Arc<PlatformConfig> {
        Arc::new(PlatformConfig {
            caller,
            seed: 9,
            run_nonce: 1,
            ..PlatformConfig::default()
        })
    }

    fn script(entries: &str) -> CallerModel {
        CallerModel::Script(crate::caller::parse_script(entries).unwrap())
    }

    fn menu() -> Callflow {
        Callflow::builder()
            .say(Say::new(Text::new("Welcome").unwrap(), voice()))
            .capture(SayAndCapture::new(
                Text::new("Press 1 for sales").unwrap(),
                voice(),
            ))
            .unwrap()
    }

    fn parse(out: &Outgoing) -> Webhook {
        Webhook::from_slice(&out.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.body)))
    }

    #[test]
    fn call_received_parses_and_names_the_destination() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(CallerModel::default()), 0, now);
        let Webhook::CallAction(a) = parse(&call.call_received(now)) else {
            panic!("not a call action")
        };
        assert_eq!(a.destination, "+6568888888");
        assert_eq!(a.source.len(), 12, "{}", a.source);
        assert_eq!(a.session_id, call.session_id().as_str());
        assert_eq!(a.client_action_id, None);
        assert_eq!(a.event_data, None);
    }

    #[test]
    fn capture_echoes_client_action_id_and_keys() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(script("1")), 0, now);
        let mut flow = menu();
        flow.client_action_id =
            Some(switchboard_protocol::ClientActionId::new("main-menu").unwrap());
        let run = call.execute(&flow, now);
        let Next::Continue(completion) = run.next else {
            panic!("{run:?}")
        };
        assert_eq!(completion.dtmf, Some(Some("1".to_owned())));
        let Webhook::CallAction(a) = parse(&call.action_completed(&completion, now)) else {
            panic!()
        };
        assert_eq!(a.client_action_id.as_deref(), Some("main-menu"));
        assert_eq!(a.dtmf(), Some("1"));
    }

    #[test]
    fn silence_and_short_input_retry_then_null() {
        let now = SystemTime::now();
        let account = SayAndCapture::new(Text::new("Account number?").unwrap(), voice())
            .digits(
                Some(DigitCount::new(4).unwrap()),
                DigitCount::new(4).unwrap(),
            )
            .unwrap()
            .tries(3)
            .unwrap();
        let flow = Callflow::builder().capture(account).unwrap();
        let mut call = VirtualCall::inbound(config(script("-,12,1234#")), 0, now);
        let run = call.execute(&flow, now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: Some(Some("1234".into())),
                sip_code: 200
            })
        );
        let mut call = VirtualCall::inbound(config(script("-,12,-")), 1, now);
        let run = call.execute(&flow, now);
        let Next::Continue(completion) = run.next else {
            panic!()
        };
        assert_eq!(completion.dtmf, Some(None));
        let Webhook::CallAction(a) = parse(&call.action_completed(&completion, now)) else {
            panic!()
        };
        assert_eq!(a.event_data.unwrap().dtmf, None);
    }

    #[test]
    fn say_only_callflow_completes_without_event_data() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(script("-")), 0, now);
        let flow = Callflow::builder()
            .say(Say::new(Text::new("Hello").unwrap(), voice()))
            .finish()
            .unwrap();
        // An empty builder becomes a hangup; this one has a say.
        let run = call.execute(&flow, now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: None,
                sip_code: 200
            })
        );
    }

    fn transfer_flow() -> Callflow {
        Callflow::builder()
            .make_call(MakeCall {
                source: Msisdn::new("+6568888888").unwrap(),
                destination: Msisdn::new("6531589338").unwrap(),
                call_recording: None,
            })
            .unwrap()
    }

    fn summary(out: &Outgoing) -> switchboard_protocol::SessionSummary {
        match parse(out) {
            Webhook::SessionSummary(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn busy_transfer_continues_and_summary_has_both_legs() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            transfers: TransferMix {
                answered: 0.0,
                busy: 1.0,
                no_answer: 0.0,
            },
            ..(*config(script("1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let run = call.execute(&transfer_flow(), now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: None,
                sip_code: 486
            })
        );
        let hangup = Callflow::builder().hangup().unwrap();
        let run = call.execute(&hangup, now);
        assert_eq!(run.next, Next::End(End::Hangup));
        let s = summary(&call.session_summary(End::Hangup, now));
        assert_eq!(s.session_status, SessionStatus::Completed);
        assert_eq!(s.last_action.as_deref(), Some("HANGUP"));
        assert_eq!(s.call_count, Some(2));
        let b: &CallLeg = &s.details["callB"];
        assert_eq!(b.call_status.as_deref(), Some("BUSY"));
        assert_eq!(b.destination.as_deref(), Some("+6531589338"));
        assert_eq!(b.connected_timestamp, None);
        assert_eq!(s.details["callA"].call_status.as_deref(), Some("COMPLETED"));
    }

    #[test]
    fn answered_transfer_ends_the_call() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            transfers: TransferMix {
                answered: 1.0,
                busy: 0.0,
                no_answer: 0.0,
            },
            talk_time: Some(Duration::from_secs(30)),
            ..(*config(script("1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let run = call.execute(&transfer_flow(), now);
        assert_eq!(run.next, Next::End(End::Transferred));
        assert_eq!(run.spoken, Duration::from_secs(30));
        let s = summary(&call.session_summary(End::Transferred, now + run.spoken));
        assert_eq!(s.last_action.as_deref(), Some("MAKE_CALL"));
        assert_eq!(s.details["callB"].call_status.as_deref(), Some("COMPLETED"));
        assert_eq!(s.details["callB"].call_duration, Some(30));
        assert!(s.details["callB"].connected_timestamp.is_some());
    }

    #[test]
    fn step_limit_ends_a_looping_flow() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            max_steps: 3,
            ..(*config(script("1,1,1,1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let nexts: Vec<Next> = (0..3).map(|_| call.execute(&menu(), now).next).collect();
        assert!(matches!(nexts[1], Next::Continue(_)));
        assert_eq!(nexts[2], Next::End(End::StepLimit));
    }

    #[test]
    fn early_hangup_happens_within_the_horizon() {
        let model = CallerModel::Walk(Walk {
            invalid: 0.0,
            silence: 0.0,
            hangup: 1.0,
        });
        let now = SystemTime::now();
        let mut hung_up = 0;
        for index in 0..20 {
            let mut call = VirtualCall::inbound(config(model.clone()), index, now);
            for _ in 0..10 {
                match call.execute(&menu(), now).next {
                    Next::End(End::CallerHangup) => {
                        hung_up += 1;
                        break;
                    }
                    Next::End(other) => panic!("{other:?}"),
                    Next::Continue(_) => {}
                }
            }
        }
        assert_eq!(hung_up, 20);
    }

    #[test]
    fn failed_and_v2_bodies() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            v2_share: 1.0,
            ..(*config(script("5"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let Next::Continue(c) = call.execute(&menu(), now).next else {
            panic!()
        };
        let out = call.action_completed(&c, now);
        let text = String::from_utf8(out.body.clone()).unwrap();
        assert!(text.contains(r#""eventData":"5""#), "{text}");
        assert!(text.contains(r#""callDuration":"0""#), "{text}");
        let s = summary(&call.session_summary(End::Failed(Failure::Http(500)), now));
        assert_eq!(s.session_status, SessionStatus::Error);
        let e = s.error_details.unwrap();
        assert_eq!(e.error_code, Some(-2002));
        assert_eq!(s.details["callA"].call_status.as_deref(), Some("FAILED"));
    }

    #[test]
    fn script_entry_keys_are_kept_verbatim() {
        assert_eq!(
            "12#".parse::<ScriptEntry>(),
            Ok(ScriptEntry::Keys("12#".into()))
        );
    }
}

mod properties {
    use proptest::prelude::*;
    use switchboard_protocol::{
        ClientActionId, Msisdn, Say, SessionStatus, Text, VoiceProfile, Webhook,
    };

    use crate::call::*;
    use crate::caller::{CallerModel, Walk};

    fn voice() -> VoiceProfile {
        VoiceProfile::new("en-US-BenjaminRUS").unwrap()
    }

    /// A small IVR: a menu; 1 transfers, 2 says goodbye and hangs up, anything else repeats.
    fn answer(dtmf: Option<&str>, first: bool) -> Callflow {
        let menu = || {
            Callflow::builder()
                .client_action_id(ClientActionId::new("menu").unwrap())
                .capture(SayAndCapture::new(
                    Text::new("Press 1 for sales or 2 to leave.").unwrap(),
                    voice(),
                ))
                .unwrap()
        };
        match (first, dtmf) {
            (true, _) => menu(),
            (false, Some("1")) => Callflow::builder()
                .client_action_id(ClientActionId::new("transfer").unwrap())
                .make_call(MakeCall {
                    source: Msisdn::new("+6568888888").unwrap(),
                    destination: Msisdn::new("+6531589338").unwrap(),
                    call_recording: None,
                })
                .unwrap(),
            (false, Some("2")) => Callflow::builder()
                .say(Say::new(Text::new("Goodbye").unwrap(), voice()))
                .hangup()
                .unwrap(),
            _ => menu(),
        }
    }

    proptest! {
        /// Every body a call writes parses as the webhook it claims to be, echoes the last
        /// clientActionId, and the summary agrees with how the call ended.
        #[test]
        fn every_call_writes_consistent_webhooks(
            seed in any::<u64>(),
            index in 0u64..1000,
            invalid in 0.0f64..0.5,
            silence in 0.0f64..0.5,
            hangup in 0.0f64..1.0,
            v2 in any::<bool>(),
        ) {
            let config = Arc::new(PlatformConfig {
                caller: CallerModel::Walk(Walk { invalid, silence, hangup }),
                seed,
                run_nonce: seed ^ 1,
                max_steps: 20,
                v2_share: if v2 { 1.0 } else { 0.0 },
                ..PlatformConfig::default()
            });
            let now = SystemTime::now();
            let mut call = VirtualCall::inbound(config, index, now);
            let session = call.session_id().to_string();
            let out = call.call_received(now);
            let Webhook::CallAction(a) = Webhook::from_slice(&out.body).unwrap() else { panic!() };
            prop_assert_eq!(&a.session_id, &session);
            let mut callflow = answer(None, true);
            let end = loop {
                let run = call.execute(&callflow, now);
                match run.next {
                    Next::End(end) => break end,
                    Next::Continue(completion) => {
                        let out = call.action_completed(&completion, now);
                        let Webhook::CallAction(a) = Webhook::from_slice(&out.body).unwrap() else {
                            panic!()
                        };
                        prop_assert_eq!(
                            a.client_action_id.as_deref(),
                            callflow.client_action_id.as_ref().map(|c| c.as_str())
                        );
                        prop_assert_eq!(&a.event_id, &out.event_id.to_string());
                        callflow = answer(a.dtmf(), false);
                    }
                }
            };
            let out = call.session_summary(end, now);
            let Webhook::SessionSummary(s) = Webhook::from_slice(&out.body).unwrap() else { panic!() };
            prop_assert_eq!(&s.session_id, &session);
            prop_assert_eq!(s.call_count, Some(s.details.len() as u64));
            prop_assert_eq!(s.details.len(), 1 + call.transfers().len());
            let expected = match end {
                End::Failed(_) | End::Expired => SessionStatus::Error,
                End::DialFailed(Transfer::Busy) => SessionStatus::Busy,
                End::DialFailed(_) => SessionStatus::NoAnswer,
                _ => SessionStatus::Completed,
            };
            prop_assert_eq!(s.session_status, expected);
            prop_assert_eq!(s.details["callA"].call_status.as_deref(), Some("COMPLETED"));
            if end == End::Transferred {
                prop_assert_eq!(s.last_action.as_deref(), Some("MAKE_CALL"));
                prop_assert_eq!(call.transfers().last(), Some(&Transfer::Answered));
            }
        }
    }
}
