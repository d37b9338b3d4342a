//! A YAML (and therefore JSON) document as a tree whose every node knows its line and column.
//!
//! serde's YAML support forgets positions once a value is parsed, but a flow author needs
//! `restaurant.yaml:14:7: node 'main': ...`. We build our own small tree from yaml-rust2's
//! event stream instead, resolving plain scalars to null, booleans and numbers the YAML 1.2 core
//! schema way, and expanding aliases (`*anchor`) to copies of what they name.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl Pos {
    fn from_marker(m: Marker) -> Self {
        Self {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value in the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (quoted, or a plain scalar that is no other type).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order (keys are kept as nodes for their positions).
    Map(Vec<(Node, Node)>),
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Its position.
    pub pos: Pos,
}

impl Node {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short description of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as text (numbers and booleans written back), for keys like `"1"` or `1`.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }
}

/// A syntax error, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Parses one YAML document into a tree. An empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        pos: Pos::from_marker(*e.marker()),
        message: e.info().to_owned(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

enum Open {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn insert(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Open::Map(map, _, pending_key)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = Pos::from_marker(mark);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(text)
                } else {
                    Value::Str(text)
                };
                self.insert(Node { value, pos }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(
                Node {
                    value: Value::Seq(Vec::new()),
                    pos,
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map(
                Node {
                    value: Value::Map(Vec::new()),
                    pos,
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Open::Seq(mut node, anchor) | Open::Map(mut node, anchor, _)) =
                    self.stack.pop()
                {
                    // A block mapping's start marker points past its first key; its first key
                    // is where a reader sees it begin.
                    if let Value::Map(entries) = &node.value
                        && let Some((key, _)) = entries.first()
                        && key.pos < node.pos
                    {
                        node.pos = key.pos;
                    }
                    self.insert(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.pos = pos;
                    self.insert(node, 0);
                }
                None => {
                    self.error.get_or_insert(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".to_owned(),
                    });
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// The YAML 1.2 core schema's resolution of a plain scalar.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    // A leading `+` is kept as a string: phone numbers are written `+6568888888`.
    if !text.starts_with('+') {
        if let Ok(i) = text.parse::<i64>() {
            // Leading zeros ("007") are not integers in the core schema; keep them as text.
            if !(text.len() > 1 && text.trim_start_matches('-').starts_with('0')) {
                return Value::Int(i);
            }
        } else if text.bytes().any(|b| b == b'.' || b == b'e' || b == b'E')
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            && let Ok(f) = text.parse::<f64>()
        {
            return Value::Float(f);
        }
    }
    Value::Str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_and_types() {
        let doc = parse("id: restaurant\nnodes:\n  main:\n    timeout_ms: 10000\n    speed: 1.5\n    to: +6531589338\n    ok: true\n    none: ~\n").unwrap();
        let top = map_entries(&doc);
        assert_eq!(top[0].0.as_str(), Some("id"));
        assert_eq!(top[0].1.pos, Pos { line: 1, col: 5 });
        let main = &map_entries(&top[1].1)[0];
        assert_eq!(main.0.pos, Pos { line: 3, col: 3 });
        let fields = map_entries(&main.1);
        assert_eq!(fields[0].1.value, Value::Int(10000));
        assert_eq!(fields[1].1.value, Value::Float(1.5));
        assert_eq!(fields[2].1.value, Value::Str("+6531589338".into()));
        assert_eq!(fields[3].1.value, Value::Bool(true));
        assert_eq!(fields[4].1.value, Value::Null);
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse(r#"{"id": "x", "numbers": ["+65"], "n": 3}"#).unwrap();
        assert_eq!(map_entries(&doc).len(), 3);
    }

    #[test]
    fn quoted_scalars_stay_strings_and_aliases_expand() {
        let doc = parse("a: &x \"1\"\nb: *x\nc: '007'\nd: 007\n").unwrap();
        let e = map_entries(&doc);
        assert_eq!(e[0].1.value, Value::Str("1".into()));
        assert_eq!(e[1].1.value, Value::Str("1".into()));
        assert_eq!(e[1].1.pos.line, 2);
        assert_eq!(e[3].1.value, Value::Str("007".into()));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
