//! The caller model: what a virtual caller does when a prompt asks for keys.
//!
//! A `sayAndCapture` offering a menu does not list its valid keys on the wire, so the model
//! reads them from the prompt the way a person would: the keys named after "press", "dial",
//! "select", ... in the same sentence ("Press 1 for sales, 2 for support", "For billing press 3",
//! "press star"). A prompt that names none gets the digits 0-9. A capture with `minDigits` or
//! `maxDigits` above one (an account number) gets that many digits instead.
//!
//! Two models ([`CallerModel`]):
//! * a seeded random walk over the offered keys, with configurable shares of invalid keys,
//!   silences and early hang-ups;
//! * a fixed script of keys, consumed one entry per capture attempt; when it runs out the caller
//!   hangs up.
//!
//! The model is pure: randomness is passed in, so a call repeats exactly for the same seed.

use rand::Rng;
use rand::rngs::StdRng;
use switchboard_protocol::SayAndCapture;

/// How the virtual callers behave.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerModel {
    /// A random walk over the offered keys.
    Walk(Walk),
    /// The same keys for every call.
    Script(Vec<ScriptEntry>),
}

impl Default for CallerModel {
    fn default() -> Self {
        Self::Walk(Walk::default())
    }
}

/// Shares of the random walk's deviations from a well-behaved caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Walk {
    /// Share of capture attempts answered with a key the prompt did not offer (or, for a
    /// number, too few digits).
    pub invalid: f64,
    /// Share of capture attempts answered with silence.
    pub silence: f64,
    /// Share of calls in which the caller hangs up early, at a random point.
    pub hangup: f64,
}

impl Default for Walk {
    fn default() -> Self {
        Self {
            invalid: 0.05,
            silence: 0.05,
            hangup: 0.05,
        }
    }
}

/// One entry of a fixed script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEntry {
    /// Press these keys (`0-9`, `*`, `#`).
    Keys(String),
    /// Press nothing.
    Silence,
    /// Hang up.
    Hangup,
}

impl std::str::FromStr for ScriptEntry {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        match entry {
            "-" | "silence" => Ok(Self::Silence),
            "hangup" => Ok(Self::Hangup),
            "" => Err("an empty entry; write - for silence".to_owned()),
            keys if keys.bytes().all(|b| KEYS.contains(&b)) => Ok(Self::Keys(keys.to_owned())),
            other => Err(format!(
                "{other:?} is not a script entry; expected keys (0-9 * #), - for silence, or hangup"
            )),
        }
    }
}

/// Parses a script such as `1,2,12345678#,-,hangup`.
pub fn parse_script(script: &str) -> Result<Vec<ScriptEntry>, String> {
    script.split(',').map(str::parse).collect()
}

/// What the caller does at one capture attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Presses these keys.
    Keys(String),
    /// Presses nothing until the platform gives up waiting.
    Silence,
    /// Hangs up.
    Hangup,
}

/// The twelve DTMF keys.
pub const KEYS: &[u8; 12] = b"0123456789*#";

/// A set of DTMF keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeySet(u16);

impl KeySet {
    /// The digits 0-9: what a prompt that names no keys is assumed to accept.
    pub const DIGITS: KeySet = KeySet(0x3ff);

    /// Adds a key (ignores anything that is not a DTMF key).
    pub fn insert(&mut self, key: u8) {
        if let Some(i) = KEYS.iter().position(|&k| k == key) {
            self.0 |= 1 << i;
        }
    }

    /// Removes a key.
    pub fn remove(&mut self, key: u8) {
        if let Some(i) = KEYS.iter().position(|&k| k == key) {
            self.0 &= !(1 << i);
        }
    }

    /// Whether the set holds `key`.
    pub fn contains(self, key: u8) -> bool {
        KEYS.iter()
            .position(|&k| k == key)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// How many keys.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The keys, in `0-9 * #` order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        KEYS.iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, &k)| k)
    }

    fn pick(self, rng: &mut StdRng) -> Option<u8> {
        if self.is_empty() {
            return None;
        }
        self.iter().nth(rng.random_range(0..self.len()))
    }
}

impl std::fmt::Display for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for k in self.iter() {
            write!(f, "{}", char::from(k))?;
        }
        Ok(())
    }
}

/// Words after which a prompt names keys, in the languages TTS prompts commonly use.
const TRIGGERS: &[&str] = &[
    "press", "dial", "select", "enter", "push", "key", "choose", "option", "hit", "type", "marque",
    "pulse", "oprima", "presione", "appuyez", "tapez", "composez", "drücken", "druecken", "wählen",
    "waehlen", "premere", "digite",
];

/// The key a word names, if any: `1`, `one`, `star`, `hash`, `pound`.
fn key_word(word: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 14] = [
        ("zero", b'0'),
        ("one", b'1'),
        ("two", b'2'),
        ("three", b'3'),
        ("four", b'4'),
        ("five", b'5'),
        ("six", b'6'),
        ("seven", b'7'),
        ("eight", b'8'),
        ("nine", b'9'),
        ("star", b'*'),
        ("asterisk", b'*'),
        ("hash", b'#'),
        ("pound", b'#'),
    ];
    if let [d @ b'0'..=b'9'] = word.as_bytes() {
        return Some(*d);
    }
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, k)| k)
}

/// The keys a prompt offers: those named after a trigger word in the same sentence.
pub fn offered_keys(prompt: &str) -> KeySet {
    let mut keys = KeySet::default();
    let mut armed = false;
    let mut word_start = None;
    let mut word = |word: &str, armed: &mut bool| {
        if TRIGGERS.iter().any(|t| t.eq_ignore_ascii_case(word)) {
            *armed = true;
        } else if *armed && let Some(k) = key_word(word) {
            keys.insert(k);
        }
    };
    for (i, c) in prompt.char_indices() {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = word_start.take() {
            word(&prompt[start..i], &mut armed);
        }
        match c {
            '*' | '#' if armed => word(if c == '*' { "star" } else { "hash" }, &mut armed),
            '.' | '!' | '?' | ';' | '\n' => armed = false,
            _ => {}
        }
    }
    if let Some(start) = word_start {
        word(&prompt[start..], &mut armed);
    }
    keys
}

/// What a capture asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// One key of a menu.
    Menu(KeySet),
    /// A number of `min..=max` digits.
    Digits {
        /// Fewest digits.
        min: u8,
        /// Most digits.
        max: u8,
    },
}

/// Reads what a capture asks for from its prompt and digit limits.
pub fn ask(capture: &SayAndCapture) -> Ask {
    let min = capture.min_digits().map(|d| d.get());
    let max = capture.max_digits().map(|d| d.get());
    let mut keys = offered_keys(capture.prompt_message().as_str());
    if capture.completes_on_hash() {
        // `#` ends input there: pressing it alone enters nothing.
        keys.remove(b'#');
    }
    let number = min.is_some_and(|m| m > 1) || (keys.is_empty() && max.is_some_and(|m| m > 1));
    match (number, min, max) {
        (true, min, Some(max)) => Ask::Digits {
            min: min.unwrap_or(max).min(max),
            max,
        },
        _ if keys.is_empty() => Ask::Menu(KeySet::DIGITS),
        _ => Ask::Menu(keys),
    }
}

/// Share of the early hang-ups' horizon: a caller who hangs up early does so at one of the
/// first this-many actions of the call, uniformly.
const HANGUP_HORIZON: u32 = 8;

/// One virtual caller.
#[derive(Debug, Clone)]
pub struct Caller {
    next_entry: usize,
    hangup_at: Option<u32>,
}

impl Caller {
    /// A caller of `model`; for the random walk, decides now whether and when it hangs up early.
    pub fn new(model: &CallerModel, rng: &mut StdRng) -> Self {
        let hangup_at = match model {
            CallerModel::Walk(walk)
                if walk.hangup > 0.0 && rng.random_bool(walk.hangup.min(1.0)) =>
            {
                Some(rng.random_range(0..HANGUP_HORIZON))
            }
            _ => None,
        };
        Self {
            next_entry: 0,
            hangup_at,
        }
    }

    /// Whether the caller hangs up during the `action`-th action of the call (0-based).
    pub fn hangs_up_during(&self, action: u32) -> bool {
        self.hangup_at == Some(action)
    }

    /// What the caller does when `capture` asks for keys.
    pub fn respond(
        &mut self,
        model: &CallerModel,
        capture: &SayAndCapture,
        rng: &mut StdRng,
    ) -> Response {
        match model {
            CallerModel::Script(script) => {
                let entry = script.get(self.next_entry);
                self.next_entry += 1;
                match entry {
                    Some(ScriptEntry::Keys(keys)) => Response::Keys(keys.clone()),
                    Some(ScriptEntry::Silence) => Response::Silence,
                    Some(ScriptEntry::Hangup) | None => Response::Hangup,
                }
            }
            CallerModel::Walk(walk) => {
                let roll: f64 = rng.random();
                if roll < walk.silence {
                    Response::Silence
                } else if roll < walk.silence + walk.invalid {
                    Response::Keys(invalid_keys(ask(capture), rng))
                } else {
                    Response::Keys(valid_keys(ask(capture), rng))
                }
            }
        }
    }
}

fn valid_keys(ask: Ask, rng: &mut StdRng) -> String {
    match ask {
        Ask::Menu(keys) => char::from(keys.pick(rng).unwrap_or(b'1')).to_string(),
        Ask::Digits { min, max } => digits(rng.random_range(min..=max), rng),
    }
}

fn invalid_keys(ask: Ask, rng: &mut StdRng) -> String {
    match ask {
        Ask::Menu(keys) => {
            let mut others = KeySet(KeySet::DIGITS.0 | (1 << 10));
            for k in keys.iter() {
                others.remove(k);
            }
            char::from(others.pick(rng).unwrap_or(b'*')).to_string()
        }
        // Too short: the platform refuses it and asks again.
        Ask::Digits { min, .. } if min > 1 => digits(rng.random_range(1..min), rng),
        // Any length is accepted: a well-formed number the business does not know.
        Ask::Digits { min, max } => digits(rng.random_range(min..=max), rng),
    }
}

fn digits(n: u8, rng: &mut StdRng) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use switchboard_protocol::{DigitCount, Text, VoiceProfile};

    use super::*;

    fn keys(prompt: &str) -> String {
        offered_keys(prompt).to_string()
    }

    #[test]
    fn reads_offered_keys_from_prompts() {
        assert_eq!(
            keys("Press 1 for sales, 2 for support, or 3 for billing."),
            "123"
        );
        assert_eq!(
            keys("For sales press 1. For support press 2. To repeat, press star."),
            "12*"
        );
        assert_eq!(keys("Press one for English. Para español, marque 2."), "12");
        assert_eq!(
            keys("Welcome! We are open 9 to 5. Press 0 for an operator"),
            "0"
        );
        assert_eq!(keys("Press # to confirm or 9 to return"), "9#");
        assert_eq!(keys("Please hold."), "");
        assert_eq!(keys("Enter 1 or 22 please"), "1");
    }

    fn capture(prompt: &str) -> SayAndCapture {
        SayAndCapture::new(
            Text::new(prompt).unwrap(),
            VoiceProfile::new("en-US-BenjaminRUS").unwrap(),
        )
    }

    #[test]
    fn classifies_menus_and_numbers() {
        let menu = capture("Press 1 for sales or # to repeat");
        assert_eq!(ask(&menu), Ask::Menu(offered_keys("press 1")));
        let no_keys = capture("What would you like?");
        assert_eq!(ask(&no_keys), Ask::Menu(KeySet::DIGITS));
        let account = capture("Enter your account number")
            .digits(
                Some(DigitCount::new(6).unwrap()),
                DigitCount::new(8).unwrap(),
            )
            .unwrap();
        assert_eq!(ask(&account), Ask::Digits { min: 6, max: 8 });
        let pin = capture("Enter your PIN")
            .digits(None, DigitCount::new(4).unwrap())
            .unwrap();
        assert_eq!(ask(&pin), Ask::Digits { min: 4, max: 4 });
        let single = capture("Choose")
            .digits(None, DigitCount::new(1).unwrap())
            .unwrap();
        assert_eq!(ask(&single), Ask::Menu(KeySet::DIGITS));
    }

    #[test]
    fn walk_stays_on_offered_keys_unless_told_otherwise() {
        let model = CallerModel::Walk(Walk {
            invalid: 0.0,
            silence: 0.0,
            hangup: 0.0,
        });
        let menu = capture("Press 1 for sales, 2 for support");
        let mut rng = StdRng::seed_from_u64(3);
        let mut caller = Caller::new(&model, &mut rng);
        for _ in 0..100 {
            let r = caller.respond(&model, &menu, &mut rng);
            assert!(
                matches!(&r, Response::Keys(k) if k == "1" || k == "2"),
                "{r:?}"
            );
        }
        let model = CallerModel::Walk(Walk {
            invalid: 1.0,
            silence: 0.0,
            hangup: 0.0,
        });
        for _ in 0..100 {
            let r = caller.respond(&model, &menu, &mut rng);
            assert!(
                matches!(&r, Response::Keys(k) if k != "1" && k != "2"),
                "{r:?}"
            );
        }
        let account = capture("Account number please")
            .digits(
                Some(DigitCount::new(6).unwrap()),
                DigitCount::new(6).unwrap(),
            )
            .unwrap();
        let r = caller.respond(&model, &account, &mut rng);
        assert!(matches!(&r, Response::Keys(k) if k.len() < 6), "{r:?}");
    }

    #[test]
    fn script_is_consumed_then_hangs_up() {
        let model = CallerModel::Script(parse_script("1, -,123#").unwrap());
        let menu = capture("Press 1");
        let mut rng = StdRng::seed_from_u64(0);
        let mut caller = Caller::new(&model, &mut rng);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(caller.respond(&model, &menu, &mut rng));
        }
        assert_eq!(
            got,
            [
                Response::Keys("1".into()),
                Response::Silence,
                Response::Keys("123#".into()),
                Response::Hangup
            ]
        );
        assert!(parse_script("1,x").unwrap_err().contains("\"x\""));
        assert!(parse_script("1,,2").is_err());
    }
}
