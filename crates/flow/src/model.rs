//! The compiled flow: an executable graph of nodes addressed by index.
//!
//! Everything here has been checked by [`crate::compile`](mod@crate::compile): targets resolve, texts and numbers
//! that are not templated are already valid wire values, regular expressions are compiled and
//! time zones resolved, so [`crate::step`] never fails on a compiled flow except on values that
//! only exist at run time (a templated phone number, for example).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use regex::Regex;
use switchboard_protocol::{DigitCount, FileUrl, Repetition, Speed, VoiceProfile};

use crate::template::Template;
use crate::yaml::Pos;

/// A node's index in [`Flow::nodes`].
pub type NodeId = u16;

/// A flow's version: a hash of its source, so every replica that loads the same file agrees on
/// it without coordination.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FlowVersion(pub u32);

impl FlowVersion {
    /// The version of a flow source (32-bit FNV-1a folded from 64 bits).
    pub fn of(source: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in source.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Self((hash ^ (hash >> 32)) as u32)
    }

    /// Parses the 8 hex digits of [`fmt::Display`].
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 8)
            .then(|| u32::from_str_radix(text, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl fmt::Display for FlowVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A compiled flow.
#[derive(Debug)]
pub struct Flow {
    /// The flow's id (`[A-Za-z0-9_-]`, at most 40 characters).
    pub id: String,
    /// Where the id is written, for messages about two flows with the same id.
    pub id_pos: Pos,
    /// Its version.
    pub version: FlowVersion,
    /// The file it came from, for messages.
    pub file: String,
    /// A human description.
    pub description: Option<String>,
    /// The virtual numbers routed here, normalized to `+digits`.
    pub numbers: Vec<String>,
    /// Where each of `numbers` is written, for messages.
    pub number_pos: Vec<Pos>,
    /// The default voice.
    pub speech: Speech,
    /// The time zone for time conditions without their own.
    pub timezone: Tz,
    /// Where a call starts.
    pub start: NodeId,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Node names to indices.
    pub index: HashMap<String, NodeId>,
    /// The languages the flow speaks, if several (`language:` and `defaults.voices`).
    pub language: Option<Language>,
    /// Whether a node is a `subflow` (a step then needs the flow set: [`crate::step_in`]).
    pub calls_subflows: bool,
    /// Whether a node is a `split` (a step then needs [`crate::SessionState::session`]).
    pub splits: bool,
}

impl Flow {
    /// The node called `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// The node at `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[usize::from(id)]
    }
}

/// How text is spoken.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// Voice profile.
    pub voice: VoiceProfile,
    /// Speed, if not the platform's default.
    pub speed: Option<Speed>,
    /// In a flow that speaks several languages, the voice and speed of each (in
    /// [`Language::codes`] order, the node's own `voice`/`speed` applied); empty otherwise.
    pub languages: Vec<(VoiceProfile, Option<Speed>)>,
}

/// A node of the graph.
#[derive(Debug)]
pub struct Node {
    /// Its name in the flow file.
    pub name: String,
    /// Where it is defined.
    pub pos: Pos,
    /// What it does.
    pub kind: NodeKind,
}

/// Where a transition goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A node of the flow.
    Node(NodeId),
    /// The built-in `hangup`.
    Hangup,
    /// The built-in `back`: the menu the caller came from (the start node if none).
    Back,
    /// The built-in `return`: back from a sub-flow to the calling node's `next` (outside a
    /// sub-flow, the call ends).
    Return,
}

/// The kinds of node.
#[derive(Debug)]
pub enum NodeKind {
    /// A menu: a prompt and single-key (or short) options.
    Menu(Menu),
    /// Speak text.
    Say(SayNode),
    /// Play an audio file.
    Play(PlayNode),
    /// Bridge the caller to another number.
    Transfer(Transfer),
    /// Capture several digits into a variable.
    Capture(Capture),
    /// Go to the first target whose condition holds.
    Branch(Branch),
    /// Set variables.
    Set(SetNode),
    /// Go to one of several targets, by weight, the same one for a session on every replica.
    Split(Split),
    /// Run nodes of another flow until one goes to `return`.
    Subflow(SubflowNode),
    /// Look something up over HTTP (performed by the runtime; see [`crate::fetch`]).
    Fetch(Box<crate::fetch::FetchNode>),
}

impl NodeKind {
    /// The kind's name in the flow language.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Menu(_) => "menu",
            Self::Say(_) => "say",
            Self::Play(_) => "play",
            Self::Transfer(_) => "transfer",
            Self::Capture(_) => "capture",
            Self::Branch(_) => "branch",
            Self::Set(_) => "set",
            Self::Split(_) => "split",
            Self::Subflow(_) => "subflow",
            Self::Fetch(_) => "fetch",
        }
    }

    /// Every target this node can go to, for reachability checks.
    pub fn targets(&self) -> Vec<Target> {
        match self {
            Self::Menu(m) => m
                .options
                .iter()
                .map(|(_, t)| *t)
                .chain([m.on_fail])
                .collect(),
            Self::Say(s) => vec![s.next],
            Self::Play(p) => vec![p.next],
            Self::Transfer(t) => vec![t.next, t.on_busy, t.on_no_answer, t.on_error],
            Self::Capture(c) => vec![c.next, c.on_fail],
            Self::Branch(b) => b.rules.iter().map(|(_, t)| *t).chain([b.default]).collect(),
            Self::Set(s) => vec![s.next],
            Self::Split(s) => s.branches.iter().map(|(_, t)| *t).collect(),
            Self::Subflow(s) => vec![s.next],
            Self::Fetch(f) => f.targets(),
        }
    }
}

/// A menu node.
#[derive(Debug)]
pub struct Menu {
    /// The first prompt.
    pub prompt: Prompt,
    /// The prompt from the second attempt on.
    pub reprompt: Option<Prompt>,
    /// Said before re-prompting after a wrong key.
    pub invalid: Option<Prompt>,
    /// Said before re-prompting after silence.
    pub no_input: Option<Prompt>,
    /// `overallTimeout`.
    pub timeout_ms: u32,
    /// `digitTimeout`.
    pub digit_timeout_ms: Option<u32>,
    /// The wrong key that reaches this count goes to `on_fail`.
    pub max_invalid: u8,
    /// The silence that reaches this count goes to `on_fail`.
    pub max_no_input: u8,
    /// Where to go when a counter runs out.
    pub on_fail: Target,
    /// Keys and where they go, in file order.
    pub options: Vec<(String, Target)>,
    /// The voice.
    pub speech: Speech,
}

impl Menu {
    /// Where `digits` go, if they are an option.
    pub fn option(&self, digits: &str) -> Option<Target> {
        self.options
            .iter()
            .find(|(key, _)| key == digits)
            .map(|(_, t)| *t)
    }
}

/// A say node.
#[derive(Debug)]
pub struct SayNode {
    /// The text.
    pub text: Prompt,
    /// `repetition`.
    pub repeat: Option<Repetition>,
    /// The voice.
    pub speech: Speech,
    /// Where to go next.
    pub next: Target,
}

/// A play node.
#[derive(Debug)]
pub struct PlayNode {
    /// The file.
    pub url: FileUrl,
    /// `repetition`.
    pub repeat: Option<Repetition>,
    /// Where to go next.
    pub next: Target,
}

/// A transfer node.
#[derive(Debug)]
pub struct Transfer {
    /// The number to bridge to.
    pub to: Template,
    /// The number to call from; the called virtual number when absent.
    pub from: Option<Template>,
    /// `makeCall.callRecording`.
    pub record: bool,
    /// After an answered transfer (or any other result without its own target).
    pub next: Target,
    /// SIP 486 or 600.
    pub on_busy: Target,
    /// SIP 408, 480 or 487.
    pub on_no_answer: Target,
    /// Other failures (SIP ≥ 300), and a number that is not E.164 after templating.
    pub on_error: Target,
}

/// A capture node.
#[derive(Debug)]
pub struct Capture {
    /// The first prompt.
    pub prompt: Prompt,
    /// The prompt from the second attempt on.
    pub reprompt: Option<Prompt>,
    /// Said before re-prompting after an entry that does not fit.
    pub invalid: Option<Prompt>,
    /// The variable that receives the digits.
    pub var: String,
    /// `minDigits`.
    pub min_digits: DigitCount,
    /// `maxDigits`.
    pub max_digits: DigitCount,
    /// `completeOnHash`.
    pub finish_on_hash: bool,
    /// The whole entry must match this.
    pub pattern: Option<Regex>,
    /// The failed attempt (wrong entry or silence) that reaches this count goes to `on_fail`.
    pub max_attempts: u8,
    /// `overallTimeout`.
    pub timeout_ms: u32,
    /// `digitTimeout`.
    pub digit_timeout_ms: Option<u32>,
    /// The voice.
    pub speech: Speech,
    /// Where to go with a good entry.
    pub next: Target,
    /// Where to go when attempts run out.
    pub on_fail: Target,
}

impl Capture {
    /// Whether `digits` is an acceptable entry.
    pub fn accepts(&self, digits: &str) -> bool {
        let len = digits.chars().count();
        len >= usize::from(self.min_digits.get())
            && len <= usize::from(self.max_digits.get())
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
            && self.pattern.as_ref().is_none_or(|p| p.is_match(digits))
    }
}

/// A branch node.
#[derive(Debug)]
pub struct Branch {
    /// Conditions and targets; the first that holds wins.
    pub rules: Vec<(Condition, Target)>,
    /// Where to go when none holds.
    pub default: Target,
}

/// A set node.
#[derive(Debug)]
pub struct SetNode {
    /// Variables and their new values.
    pub vars: Vec<(String, Template)>,
    /// Where to go next.
    pub next: Target,
}

/// A split node: an A/B test. See [`Split::choose`].
#[derive(Debug)]
pub struct Split {
    /// Weights and targets, in file order.
    pub branches: Vec<(u32, Target)>,
    /// The sum of the weights.
    pub total: u32,
}

/// A subflow node: a call into another flow (checked when the flow set is built, where every
/// flow is known; see [`crate::set`]).
#[derive(Debug)]
pub struct SubflowNode {
    /// The flow called.
    pub flow: String,
    /// Where `flow` is written, for messages.
    pub flow_pos: Pos,
    /// The node it starts at; its `start` when absent.
    pub start: Option<String>,
    /// Where `start` is written, for messages.
    pub start_pos: Pos,
    /// Where the call goes when the sub-flow returns.
    pub next: Target,
}

/// A branch condition.
#[derive(Debug)]
pub enum Condition {
    /// All hold (also the meaning of several keys in one `when`).
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// Does not hold.
    Not(Box<Condition>),
    /// Local time of day in `[from, to)` minutes after midnight; wraps past midnight when
    /// `from > to`.
    Time {
        /// Start, minutes after midnight.
        from: u16,
        /// End (exclusive), minutes after midnight.
        to: u16,
        /// Time zone.
        tz: Tz,
    },
    /// Local day of week in the set (bit 0 = Monday).
    Days {
        /// Bit set of weekdays.
        mask: u8,
        /// Time zone.
        tz: Tz,
    },
    /// The caller's number starts with one of these (compared without `+`).
    CallerPrefix(Vec<String>),
    /// A comparison on a variable.
    Var {
        /// The variable.
        name: String,
        /// The comparison.
        test: VarTest,
    },
}

/// A comparison on a variable's value.
#[derive(Debug)]
pub enum VarTest {
    /// Equal to.
    Equals(String),
    /// Not equal to.
    NotEquals(String),
    /// One of.
    In(Vec<String>),
    /// Matches (the whole value).
    Matches(Regex),
    /// Numerically greater than.
    Gt(f64),
    /// Numerically less than.
    Lt(f64),
    /// Numerically ≥.
    Gte(f64),
    /// Numerically ≤.
    Lte(f64),
    /// Set (and non-empty), or not.
    IsSet(bool),
}

/// What conditions are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Now.
    pub now: DateTime<Utc>,
    /// The caller's number.
    pub caller: &'a str,
    /// The session's variables.
    pub vars: &'a BTreeMap<String, String>,
}

impl Condition {
    /// Whether the condition holds.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::All(all) => all.iter().all(|c| c.holds(facts)),
            Self::Any(any) => any.iter().any(|c| c.holds(facts)),
            Self::Not(c) => !c.holds(facts),
            Self::Time { from, to, tz } => {
                let local = facts.now.with_timezone(tz);
                let minute = (local.hour() * 60 + local.minute()) as u16;
                if from <= to {
                    (*from..*to).contains(&minute)
                } else {
                    minute >= *from || minute < *to
                }
            }
            Self::Days { mask, tz } => {
                let day = facts.now.with_timezone(tz).weekday().num_days_from_monday();
                mask & (1 << day) != 0
            }
            Self::CallerPrefix(prefixes) => {
                let caller = facts.caller.trim_start_matches('+');
                prefixes.iter().any(|p| caller.starts_with(p.as_str()))
            }
            Self::Var { name, test } => {
                let value = facts.vars.get(name).map(String::as_str);
                let number = || value.and_then(|v| v.trim().parse::<f64>().ok());
                match test {
                    VarTest::Equals(x) => value == Some(x.as_str()),
                    VarTest::NotEquals(x) => value != Some(x.as_str()),
                    VarTest::In(xs) => value.is_some_and(|v| xs.iter().any(|x| x == v)),
                    VarTest::Matches(re) => value.is_some_and(|v| re.is_match(v)),
                    VarTest::Gt(x) => number().is_some_and(|n| n > *x),
                    VarTest::Lt(x) => number().is_some_and(|n| n < *x),
                    VarTest::Gte(x) => number().is_some_and(|n| n >= *x),
                    VarTest::Lte(x) => number().is_some_and(|n| n <= *x),
                    VarTest::IsSet(set) => value.is_some_and(|v| !v.is_empty()) == *set,
                }
            }
        }
    }
}

/// A flow's languages: the variable that names the caller's, and the ones it speaks.
#[derive(Debug)]
pub struct Language {
    /// The variable holding the caller's language code (set by a menu, say).
    pub var: String,
    /// The language codes, in `defaults.voices` order.
    pub codes: Vec<String>,
    /// The index in `codes` of the language used when the variable is unset or names no
    /// language of the flow.
    pub default: usize,
}

impl Language {
    /// The index of the caller's language.
    pub fn current(&self, vars: &BTreeMap<String, String>) -> usize {
        vars.get(&self.var)
            .and_then(|code| self.codes.iter().position(|c| c == code))
            .unwrap_or(self.default)
    }
}

/// Spoken text: one template for every language, or one per language of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The same text whatever the language.
    One(Template),
    /// One text per language, in [`Language::codes`] order (a language the source left out
    /// has the default language's text).
    PerLanguage {
        /// The texts.
        texts: Vec<Template>,
        /// The default language's index.
        default: usize,
    },
}

impl Prompt {
    /// The text for the language at `language` (see [`Language::current`]).
    pub fn get(&self, language: usize) -> &Template {
        match self {
            Self::One(text) => text,
            Self::PerLanguage { texts, default } => texts
                .get(language)
                .or_else(|| texts.get(*default))
                .unwrap_or(&texts[0]),
        }
    }
}

impl fmt::Display for Prompt {
    /// The default language's text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(text) => text.fmt(f),
            Self::PerLanguage { default, .. } => self.get(*default).fmt(f),
        }
    }
}

impl Speech {
    /// The voice and speed for the language at `language`.
    pub fn in_language(&self, language: usize) -> (&VoiceProfile, Option<Speed>) {
        match self.languages.get(language) {
            Some((voice, speed)) => (voice, *speed),
            None => (&self.voice, self.speed),
        }
    }
}
