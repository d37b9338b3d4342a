//! Compiling `fetch` nodes and the flow-level `fetch:` defaults (`base_url`, `headers`).
//!
//! Checked here: the method, a URL that is `http(s)://` once the base URL is prefixed, header
//! names, `timeout_ms` within [`MAX_TIMEOUT_MS`], `save` variable names and JSON pointers,
//! `cases`, `{{env.NAME}}` only for names the server allow-lists (`fetch_env`), and, once the
//! whole flow is known, that every variable a request reads or a case tests is set somewhere
//! in the flow.

use std::collections::{BTreeSet, HashMap};

use chrono_tz::Tz;

use super::{Compiler, Entries};
use crate::fetch::{
    BodyTemplate, CaseTest, DEFAULT_TIMEOUT_MS, FetchNode, MAX_TIMEOUT_MS, Method, Save, SaveType,
};
use crate::model::{Condition, Flow, NodeId, NodeKind, Target};
use crate::template::{Template, is_var_name};
use crate::yaml::{self, Value};

/// The flow-level `fetch:` mapping.
#[derive(Debug, Default)]
pub(super) struct FetchDefaults {
    base_url: Option<String>,
    headers: Vec<(String, Template)>,
}

impl Compiler<'_> {
    pub(super) fn fetch_defaults(&mut self, node: &yaml::Node) -> FetchDefaults {
        let mut defaults = FetchDefaults::default();
        let Some(entries) = self.mapping(node, "fetch", &["base_url", "headers"]) else {
            return defaults;
        };
        for (key, value) in entries {
            match key {
                "base_url" => {
                    if let Some(url) = self.string(value, "fetch.base_url") {
                        if url.contains("{{") {
                            self.error(value.pos, "fetch.base_url cannot hold placeholders; put them in the node's url");
                        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
                            self.error(
                                value.pos,
                                format!(
                                    "fetch.base_url {url:?} must start with http:// or https://"
                                ),
                            );
                        } else {
                            defaults.base_url = Some(url.trim_end_matches('/').to_owned());
                        }
                    }
                }
                _ => defaults.headers = self.headers(value, "fetch.headers"),
            }
        }
        defaults
    }

    /// A template that may read `{{env.NAME}}`, for names on the server's allow-list.
    fn env_template(&mut self, node: &yaml::Node, what: &str) -> Option<Template> {
        let raw = node
            .scalar_text()
            .filter(|_| !matches!(node.value, Value::Null))?;
        let template = match Template::parse_with_env(&raw) {
            Ok(t) => t,
            Err(e) => {
                self.error(node.pos, format!("{what}: {e}"));
                return None;
            }
        };
        let mut ok = true;
        for name in template.env_names() {
            if !self.options.fetch_env.iter().any(|allowed| allowed == name) {
                self.error(
                    node.pos,
                    format!(
                        "{what} reads {{{{env.{name}}}}}, which the server does not allow-list; add {name} to the server's fetch_env setting"
                    ),
                );
                ok = false;
            }
        }
        if raw.contains(['\r', '\n']) {
            self.error(node.pos, format!("{what} must be on one line"));
            ok = false;
        }
        ok.then_some(template)
    }

    fn headers(&mut self, node: &yaml::Node, what: &str) -> Vec<(String, Template)> {
        let mut out = Vec::new();
        let Some(entries) = self.mapping(node, what, &[]) else {
            return out;
        };
        for (name, value) in entries {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                self.error(
                    value.pos,
                    format!("{what}: {name:?} is not an HTTP header name"),
                );
                continue;
            }
            if let Some(t) = self.env_template(value, &format!("{what}.{name}")) {
                out.push((name.to_owned(), t));
            }
        }
        out
    }

    fn body_template(&mut self, node: &yaml::Node) -> Option<BodyTemplate> {
        Some(match &node.value {
            Value::Null => BodyTemplate::Literal(serde_json::Value::Null),
            Value::Bool(b) => BodyTemplate::Literal((*b).into()),
            Value::Int(i) => BodyTemplate::Literal((*i).into()),
            Value::Float(f) => BodyTemplate::Literal(
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            ),
            Value::Str(s) => match Template::parse(s) {
                Ok(t) => BodyTemplate::Text(t),
                Err(e) => {
                    self.error(node.pos, format!("body: {e}"));
                    return None;
                }
            },
            Value::Seq(items) => {
                let items: Vec<_> = items.iter().map(|i| self.body_template(i)).collect();
                BodyTemplate::Array(items.into_iter().collect::<Option<_>>()?)
            }
            Value::Map(pairs) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (key, value) in pairs {
                    match (key.scalar_text(), self.body_template(value)) {
                        (Some(k), Some(v)) => out.push((k, v)),
                        _ => ok = false,
                    }
                }
                ok.then_some(BodyTemplate::Object(out))?
            }
        })
    }

    fn save(&mut self, node: &yaml::Node) -> Option<Vec<Save>> {
        let entries = self.mapping(node, "save", &[])?;
        let mut out = Vec::new();
        let mut ok = true;
        for (var, value) in entries {
            if !is_var_name(var) {
                self.error(value.pos, format!("save: variable name {var:?} must start with a letter and hold only letters, digits and '_'"));
                ok = false;
                continue;
            }
            let (pointer_node, ty) = match &value.value {
                Value::Map(_) => {
                    let Some(long) = self.mapping(value, "a save entry", &["from", "type"]) else {
                        ok = false;
                        continue;
                    };
                    let lget = |k: &str| long.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                    let ty = match lget("type").map(|t| (t, t.as_str())) {
                        None => SaveType::Any,
                        Some((_, Some("string"))) => SaveType::String,
                        Some((_, Some("number"))) => SaveType::Number,
                        Some((_, Some("bool"))) => SaveType::Bool,
                        Some((t, _)) => {
                            self.error(t.pos, "save type must be string, number or bool");
                            ok = false;
                            continue;
                        }
                    };
                    let Some(from) = lget("from") else {
                        self.error(
                            value.pos,
                            format!(
                                "save.{var} needs 'from', a JSON pointer such as /account/balance"
                            ),
                        );
                        ok = false;
                        continue;
                    };
                    (from, ty)
                }
                _ => (value, SaveType::Any),
            };
            let Some(pointer) = self.string(pointer_node, &format!("save.{var}")) else {
                ok = false;
                continue;
            };
            if !is_json_pointer(pointer) {
                self.error(
                    pointer_node.pos,
                    format!("save.{var}: {pointer:?} is not a JSON pointer; write /field/sub or /list/0 (~1 for '/', ~0 for '~')"),
                );
                ok = false;
                continue;
            }
            out.push(Save {
                var: var.to_owned(),
                pointer: pointer.to_owned(),
                ty,
            });
        }
        ok.then_some(out)
    }

    fn cases(
        &mut self,
        node: &yaml::Node,
        index: &HashMap<String, NodeId>,
        tz: Tz,
    ) -> Option<Vec<(CaseTest, Target)>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.pos,
                format!(
                    "cases must be a list (`- status: 404` / `goto: node`), got {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(case) = self.mapping(item, "a fetch case", &["status", "when", "goto"]) else {
                ok = false;
                continue;
            };
            let cget = |k: &str| case.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            let target = match cget("goto") {
                Some(g) => self.target(g, "goto", index),
                None => {
                    self.error(item.pos, "a fetch case needs 'goto'");
                    None
                }
            };
            let test = match (cget("status"), cget("when")) {
                (Some(status), None) => {
                    let codes: Vec<&yaml::Node> = match &status.value {
                        Value::Seq(items) => items.iter().collect(),
                        _ => vec![status],
                    };
                    let codes: Vec<Option<u16>> = codes
                        .into_iter()
                        .map(|c| self.uint(c, "status", 100, 599).map(|c| c as u16))
                        .collect();
                    codes
                        .into_iter()
                        .collect::<Option<Vec<_>>>()
                        .map(CaseTest::Status)
                }
                (None, Some(when)) => self.condition(when, tz).map(CaseTest::When),
                _ => {
                    self.error(
                        item.pos,
                        "a fetch case tests either 'status' (HTTP codes) or 'when' (a condition on saved values)",
                    );
                    None
                }
            };
            match (test, target) {
                (Some(test), Some(target)) => out.push((test, target)),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A fetch node: `body` is its `fetch:` mapping, `entries` the node's keys.
    pub(super) fn fetch_node(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        index: &HashMap<String, NodeId>,
        next: Option<Target>,
        tz: Tz,
    ) -> Option<FetchNode> {
        let f = self.mapping(
            body,
            "fetch",
            &[
                "url",
                "method",
                "headers",
                "query",
                "body",
                "timeout_ms",
                "save",
            ],
        )?;
        let fget = |k: &str| f.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let get = |k: &str| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let method = match fget("method").map(|m| (m, m.as_str())) {
            None => Some(Method::Get),
            Some((_, Some("GET"))) => Some(Method::Get),
            Some((_, Some("POST"))) => Some(Method::Post),
            Some((_, Some("PUT"))) => Some(Method::Put),
            Some((m, _)) => {
                self.error(m.pos, "fetch.method must be GET, POST or PUT");
                None
            }
        };
        let base = self.fetch_defaults.base_url.clone();
        let url = match fget("url") {
            None => {
                self.error(
                    body.pos,
                    "fetch needs 'url', e.g. `url: /accounts/{{vars.account}}`",
                );
                None
            }
            Some(n) => self.env_template(n, "fetch.url").and_then(|t| {
                let written = t.to_string();
                let full = match &base {
                    Some(base) if written.starts_with('/') => {
                        Template::parse_with_env(&format!("{base}{written}")).ok()?
                    }
                    _ => t,
                };
                let text = full.to_string();
                // A URL may also start with an allow-listed `{{env.NAME}}` holding the base.
                if text.starts_with("http://")
                    || text.starts_with("https://")
                    || (text.starts_with("{{env.") && base.is_none())
                {
                    Some(full)
                } else {
                    let hint = if base.is_some() {
                        "start it with / to go under the flow's fetch.base_url"
                    } else {
                        "or give a path and set the flow's fetch.base_url"
                    };
                    self.error(
                        n.pos,
                        format!(
                            "fetch.url {written:?} must start with http:// or https://; {hint}"
                        ),
                    );
                    None
                }
            }),
        };
        let mut headers = self.fetch_defaults.headers.clone();
        if let Some(h) = fget("headers") {
            for (name, value) in self.headers(h, "fetch.headers") {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
                headers.push((name, value));
            }
        }
        let mut query = Vec::new();
        let mut query_ok = true;
        if let Some(q) = fget("query") {
            match self.mapping(q, "fetch.query", &[]) {
                Some(pairs) => {
                    for (name, value) in pairs {
                        let raw = value
                            .scalar_text()
                            .filter(|_| !matches!(value.value, Value::Null));
                        match raw.map(|r| Template::parse(&r)) {
                            Some(Ok(t)) => query.push((name.to_owned(), t)),
                            Some(Err(e)) => {
                                self.error(value.pos, format!("fetch.query.{name}: {e}"));
                                query_ok = false;
                            }
                            None => {
                                self.error(
                                    value.pos,
                                    format!("fetch.query.{name} must be text or a number"),
                                );
                                query_ok = false;
                            }
                        }
                    }
                }
                None => query_ok = false,
            }
        }
        let request_body = fget("body").map(|b| self.body_template(b));
        if let (Some(Method::Get), Some(b)) = (method, fget("body")) {
            self.error(
                b.pos,
                "a GET sends no body; use method: POST or PUT, or move the values to query",
            );
        }
        let timeout_ms = match fget("timeout_ms") {
            Some(n) => self
                .uint(n, "fetch.timeout_ms", 1, u64::from(MAX_TIMEOUT_MS))
                .map(|t| t as u32),
            None => Some(DEFAULT_TIMEOUT_MS),
        };
        let save = match fget("save") {
            Some(s) => self.save(s),
            None => Some(Vec::new()),
        };
        let cases = match get("cases") {
            Some(c) => self.cases(c, index, tz),
            None => Some(Vec::new()),
        };
        let on_error = match get("on_error") {
            Some(n) => self.target(n, "on_error", index),
            None => {
                self.error(
                    body.pos,
                    "a fetch node needs 'on_error', where the call goes when the look-up fails",
                );
                None
            }
        };
        let on_timeout = match get("on_timeout") {
            Some(n) => self.target(n, "on_timeout", index),
            None => on_error,
        };
        query_ok.then_some(())?;
        Some(FetchNode {
            method: method?,
            url: url?,
            query,
            headers,
            body: request_body.map_or(Some(None), |b| b.map(Some))?,
            timeout_ms: timeout_ms?,
            save: save?,
            cases: cases?,
            next: next?,
            on_error: on_error?,
            on_timeout: on_timeout?,
        })
    }

    /// Every variable a fetch node reads (in its request or its cases) must be set somewhere in
    /// the flow: a capture's `var`, a `set`, or a fetch's `save`.
    pub(super) fn check_fetch_vars(&mut self, flow: &Flow) {
        let mut set = BTreeSet::new();
        for node in &flow.nodes {
            match &node.kind {
                NodeKind::Capture(c) => {
                    set.insert(c.var.as_str());
                }
                NodeKind::Set(s) => set.extend(s.vars.iter().map(|(n, _)| n.as_str())),
                NodeKind::Fetch(f) => set.extend(f.save.iter().map(|s| s.var.as_str())),
                _ => {}
            }
        }
        for node in &flow.nodes {
            let NodeKind::Fetch(f) = &node.kind else {
                continue;
            };
            let mut read: Vec<&str> = f.url.vars().collect();
            read.extend(f.query.iter().flat_map(|(_, t)| t.vars()));
            read.extend(f.headers.iter().flat_map(|(_, t)| t.vars()));
            if let Some(body) = &f.body {
                read.extend(body.vars());
            }
            for (test, _) in &f.cases {
                if let CaseTest::When(condition) = test {
                    condition_vars(condition, &mut read);
                }
            }
            let mut reported = BTreeSet::new();
            for var in read {
                if !set.contains(var) && reported.insert(var) {
                    self.node = Some(node.name.clone());
                    self.error(
                        node.pos,
                        format!("the fetch reads vars.{var}, which no node of this flow sets (a capture's var, a set, or a fetch's save); check the spelling"),
                    );
                    self.node = None;
                }
            }
        }
    }
}

fn condition_vars<'a>(condition: &'a Condition, out: &mut Vec<&'a str>) {
    match condition {
        Condition::All(all) | Condition::Any(all) => {
            for c in all {
                condition_vars(c, out);
            }
        }
        Condition::Not(c) => condition_vars(c, out),
        Condition::Var { name, .. } => out.push(name),
        _ => {}
    }
}

/// RFC 6901: empty (the whole document) or `/`-separated tokens where `~` is `~0` or `~1`.
fn is_json_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    pointer.starts_with('/')
        && pointer.split('/').all(|token| {
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                    return false;
                }
            }
            true
        })
}
