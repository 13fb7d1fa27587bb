//! Scheduled channels: an EventBridge rule per channel, `storyreel-channel-<name>`, whose
//! schedule starts the state machine with the channel's job request.
//!
//! The rule's only target (id [`TARGET_ID`]) is the state machine, with the role EventBridge
//! assumes to call `states:StartExecution`, and an input transformer that copies the schedule
//! event's `time` into the request: `{"time": "$.time"}` → `{"story": {"prompt": ...}, ...,
//! "trigger": {"channel": <name>, "time": <time>}}`. The story step derives the job id from the
//! channel and the tick's time, so a tick delivered twice makes one job.
//!
//! Everything that can be checked locally is checked before any call: the channel name (a
//! rule-name suffix), the schedule expression (`rate(N unit)` or a six-field `cron(...)`), the
//! ARNs, the input template's size, and that the request the rule will send parses as a
//! [`JobRequest`]. Angle brackets in user text are written as JSON escapes (`\u003c`), so a
//! prompt can never smuggle an input-transformer placeholder into the template.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Target};
use serde_json::{Value, json};

use super::backgrounds::BackgroundSelector;
use super::{AnySdkError, Failure, SdkConfig, classify};
use crate::steps::VoiceOptions;
use crate::steps::story::JobRequest;

/// Prefix of every channel's rule name.
pub const RULE_PREFIX: &str = "storyreel-channel-";
/// The id of the state machine target on a channel's rule.
pub const TARGET_ID: &str = "video";
/// The request field that carries a channel's background choice (by tag, id or at random), for
/// the story step to resolve against the library at each tick.
pub const BACKGROUND_SELECTOR_FIELD: &str = "background_selector";
/// Longest prompt accepted (the whole input template must stay under EventBridge's 8,192).
pub const MAX_PROMPT_CHARS: usize = 4000;
const MAX_TEMPLATE_CHARS: usize = 8192;
/// Stand-in for the `<time>` placeholder while the template is serialised.
const TIME_MARK: &str = "__storyreel_time__";

/// What a channel makes on every tick.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    /// 1-46 characters of `A-Za-z0-9._-` (the rule name is the prefix plus this).
    pub name: String,
    /// `rate(6 hours)` or `cron(0 12 * * ? *)`.
    pub schedule: String,
    /// What the LLM is asked to write.
    pub prompt: String,
    /// Target narration length.
    pub seconds: Option<u32>,
    /// `post` or `replies`.
    pub style: Option<String>,
    pub voice: VoiceOptions,
    /// Which background each video uses (resolved by the story step).
    pub background: Option<BackgroundSelector>,
    /// Name on the title card (default: the channel's name).
    pub card: Option<String>,
    /// Where every video of the channel is published (carried in each tick's request).
    pub publish: Vec<storyreel_publish::Destination>,
}

/// A channel as the rule describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    pub rule: String,
    pub schedule: String,
    pub enabled: bool,
    /// The target's ARN (the state machine).
    pub target: Option<String>,
    /// The request each tick sends, with `trigger.time` null.
    pub request: Option<Value>,
}

/// Why a channel command failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "invalid channel name {name:?} (expected 1-46 characters of A-Z, a-z, 0-9, '.', '_' and '-')"
    )]
    InvalidName { name: String },
    #[error("invalid schedule {expr:?}: {reason}")]
    InvalidSchedule { expr: String, reason: String },
    #[error("invalid channel request: {reason}")]
    InvalidRequest { reason: String },
    #[error("invalid {what} {value:?} (expected {expected})")]
    InvalidArn {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("channel {name:?} not found (no EventBridge rule {rule:?})")]
    NotFound { name: String, rule: String },
    #[error("access denied to EventBridge rule {rule:?} ({op})")]
    Denied {
        op: &'static str,
        rule: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("EventBridge is throttling or unavailable ({op} rule {rule:?})")]
    Unavailable {
        op: &'static str,
        rule: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{op} EventBridge rule {rule:?} failed")]
    Aws {
        op: &'static str,
        rule: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("EventBridge refused the target of rule {rule:?}: {detail}")]
    TargetRefused { rule: String, detail: String },
}

impl ChannelError {
    /// True when retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ChannelError::Unavailable { .. })
    }
}

/// The rule's name for channel `name`.
pub fn rule_name(name: &str) -> String {
    format!("{RULE_PREFIX}{name}")
}

/// Checks a channel name (EventBridge rule names are at most 64 characters).
pub fn check_name(name: &str) -> Result<(), ChannelError> {
    let ok = (1..=64 - RULE_PREFIX.len()).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ChannelError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Checks a schedule expression as EventBridge will: `rate(N unit)` with N >= 1 and a unit of
/// minute(s)/hour(s)/day(s), singular exactly when N is 1; or `cron(...)` with six fields
/// (minutes hours day-of-month month day-of-week year), one of the two day fields `?`.
pub fn check_schedule(expr: &str) -> Result<(), ChannelError> {
    let bad = |reason: String| ChannelError::InvalidSchedule {
        expr: expr.to_string(),
        reason,
    };
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let parts: Vec<&str> = inner.split(' ').collect();
        let [value, unit] = parts.as_slice() else {
            return Err(bad("expected rate(N unit), e.g. rate(6 hours)".into()));
        };
        let n: u32 = value
            .parse()
            .ok()
            .filter(|n| *n >= 1 && !value.starts_with('0'))
            .ok_or_else(|| bad(format!("rate value {value:?} is not a whole number >= 1")))?;
        let singular = ["minute", "hour", "day"];
        let plural = ["minutes", "hours", "days"];
        if n == 1 && !singular.contains(unit) {
            return Err(bad(format!(
                "unit {unit:?} with 1 (expected minute, hour or day)"
            )));
        }
        if n > 1 && !plural.contains(unit) {
            return Err(bad(format!(
                "unit {unit:?} with {n} (expected minutes, hours or days)"
            )));
        }
        return Ok(());
    }
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(bad(format!(
                "{} cron fields (expected 6: minutes hours day-of-month month day-of-week year)",
                fields.len()
            )));
        }
        const MONTHS: [&str; 12] = [
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ];
        const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        let specs: [(&str, u32, u32, &[&str]); 6] = [
            ("minutes", 0, 59, &[]),
            ("hours", 0, 23, &[]),
            ("day-of-month", 1, 31, &[]),
            ("month", 1, 12, &MONTHS),
            ("day-of-week", 1, 7, &DAYS),
            ("year", 1970, 2199, &[]),
        ];
        for (i, (field, (what, lo, hi, names))) in fields.iter().zip(specs).enumerate() {
            check_cron_field(field, i, lo, hi, names)
                .map_err(|reason| bad(format!("{what} field {field:?}: {reason}")))?;
        }
        let (dom, dow) = (fields[2], fields[4]);
        if (dom == "?") == (dow == "?") {
            return Err(bad(
                "exactly one of day-of-month and day-of-week must be '?'".into(),
            ));
        }
        return Ok(());
    }
    Err(bad(
        "expected rate(N unit) or cron(minutes hours day-of-month month day-of-week year)".into(),
    ))
}

/// One cron field: `*`, `?` (day fields), values, ranges, lists, steps, and the day fields'
/// `L`, `W` and `#` forms.
fn check_cron_field(
    field: &str,
    index: usize,
    lo: u32,
    hi: u32,
    names: &[&str],
) -> Result<(), String> {
    let value = |v: &str| -> Result<u32, String> {
        if let Some(pos) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(lo + pos as u32);
        }
        match v.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(format!("{v:?} is not in {lo}-{hi}")),
        }
    };
    if field == "?" {
        return if index == 2 || index == 4 {
            Ok(())
        } else {
            Err("'?' is only allowed in the day fields".into())
        };
    }
    for item in field.split(',') {
        if item.is_empty() {
            return Err("empty list item".into());
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(n) if n >= 1 => {}
                _ => return Err(format!("step {s:?} is not a whole number >= 1")),
            }
        }
        match base {
            "*" => {}
            "L" if index == 2 || index == 4 => {}
            "LW" if index == 2 => {}
            _ if index == 2 && base.ends_with('W') => {
                value(&base[..base.len() - 1])?;
            }
            _ if index == 4 && base.contains('#') => {
                let (d, k) = base.split_once('#').unwrap_or((base, ""));
                value(d)?;
                match k.parse::<u32>() {
                    Ok(1..=5) => {}
                    _ => return Err(format!("{k:?} after '#' is not in 1-5")),
                }
            }
            _ if index == 4 && base.len() > 1 && base.ends_with('L') => {
                value(&base[..base.len() - 1])?;
            }
            _ => match base.split_once('-') {
                Some((a, b)) => {
                    value(a)?;
                    value(b)?;
                }
                None => {
                    value(base)?;
                }
            },
        }
    }
    Ok(())
}

fn check_arn(value: &str, what: &'static str, service: &str) -> Result<(), ChannelError> {
    let parts: Vec<&str> = value.split(':').collect();
    let ok = parts.len() >= 6 && parts[0] == "arn" && parts[2] == service;
    if ok {
        Ok(())
    } else {
        Err(ChannelError::InvalidArn {
            what,
            value: value.to_string(),
            expected: if service == "states" {
                "arn:aws:states:<region>:<account>:stateMachine:<name>"
            } else {
                "arn:aws:iam::<account>:role/<name>"
            },
        })
    }
}

/// The job request each tick sends, as JSON with `trigger.time` set to `time`.
pub fn request_json(spec: &ChannelSpec, time: Value) -> Value {
    let mut story = json!({ "prompt": spec.prompt });
    if let Some(s) = spec.seconds {
        story["seconds"] = json!(s);
    }
    if let Some(s) = &spec.style {
        story["style"] = json!(s);
    }
    let mut request = json!({
        "story": story,
        "voice": spec.voice,
        "channel": spec.card.as_deref().unwrap_or(&spec.name),
        "trigger": { "channel": spec.name, "time": time },
    });
    if let Some(b) = &spec.background {
        request[BACKGROUND_SELECTOR_FIELD] = json!(b);
    }
    if !spec.publish.is_empty() {
        request["publish"] = json!(spec.publish);
    }
    request
}

/// Checks the spec and builds the rule target's input template, with the `<time>` placeholder.
pub fn input_template(spec: &ChannelSpec) -> Result<String, ChannelError> {
    check_name(&spec.name)?;
    check_schedule(&spec.schedule)?;
    let invalid = |reason: String| ChannelError::InvalidRequest { reason };
    let chars = spec.prompt.chars().count();
    if spec.prompt.trim().is_empty() || chars > MAX_PROMPT_CHARS {
        return Err(invalid(format!(
            "prompt of {chars} characters (expected 1-{MAX_PROMPT_CHARS})"
        )));
    }
    // The request must be one the story step accepts (the background selector aside, which the
    // story step resolves before reading the rest).
    let sample = request_json(spec, json!("1970-01-01T00:00:00Z"));
    serde_json::from_value::<JobRequest>(sample)
        .map_err(|e| invalid(format!("the story step would refuse it: {e}")))?;
    for d in &spec.publish {
        d.validate()
            .map_err(|e| invalid(format!("the story step would refuse it: {e}")))?;
    }
    let text = request_json(spec, json!(TIME_MARK)).to_string();
    // No '<' or '>' may reach EventBridge outside placeholders.
    let text = text.replace('<', "\\u003c").replace('>', "\\u003e");
    let text = text.replace(&format!("\"{TIME_MARK}\""), "<time>");
    if text.len() > MAX_TEMPLATE_CHARS {
        return Err(invalid(format!(
            "the rule's input is {} characters (expected <= {MAX_TEMPLATE_CHARS}); shorten the prompt",
            text.len()
        )));
    }
    Ok(text)
}

/// The request an input template sends, with `trigger.time` null.
pub fn parse_input_template(template: &str) -> Option<Value> {
    serde_json::from_str(&template.replace("<time>", "null")).ok()
}

/// Channels as EventBridge rules on the default event bus.
#[derive(Debug, Clone)]
pub struct Channels {
    client: Client,
}

impl Channels {
    /// A client built from `conf` (storyreel's retry policy).
    pub fn new(conf: &SdkConfig) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(conf)
            .retry_config(super::retry_config())
            .build();
        Self::from_client(Client::from_conf(config))
    }

    /// Channels through a client configured by the caller.
    pub fn from_client(client: Client) -> Self {
        Channels { client }
    }

    /// The EventBridge client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn err<E>(&self, op: &'static str, name: &str, e: AnySdkError<E>) -> ChannelError
    where
        E: aws_sdk_eventbridge::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        let rule = rule_name(name);
        let failure = classify(&e, &["ResourceNotFoundException"], &[]);
        let source: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        match failure {
            Failure::NotFound | Failure::NoContainer => ChannelError::NotFound {
                name: name.to_string(),
                rule,
            },
            Failure::Denied => ChannelError::Denied { op, rule, source },
            Failure::Unavailable => ChannelError::Unavailable { op, rule, source },
            Failure::Other => ChannelError::Aws { op, rule, source },
        }
    }

    /// Creates (or replaces) the channel's rule and target; true when the rule is new.
    pub async fn create(
        &self,
        spec: &ChannelSpec,
        state_machine_arn: &str,
        role_arn: &str,
    ) -> Result<bool, ChannelError> {
        let template = input_template(spec)?;
        check_arn(state_machine_arn, "state machine ARN", "states")?;
        check_arn(role_arn, "events role ARN", "iam")?;
        let rule = rule_name(&spec.name);
        let existed = match self.client.describe_rule().name(&rule).send().await {
            Ok(_) => true,
            Err(e) => match self.err("describe", &spec.name, e) {
                ChannelError::NotFound { .. } => false,
                other => return Err(other),
            },
        };
        self.client
            .put_rule()
            .name(&rule)
            .schedule_expression(&spec.schedule)
            .state(RuleState::Enabled)
            .description(format!("storyreel channel {}", spec.name))
            .send()
            .await
            .map_err(|e| self.err("create", &spec.name, e))?;
        let build_err = |e: aws_sdk_eventbridge::error::BuildError| ChannelError::Aws {
            op: "build the target of",
            rule: rule.clone(),
            source: Box::new(e),
        };
        let target = Target::builder()
            .id(TARGET_ID)
            .arn(state_machine_arn)
            .role_arn(role_arn)
            .input_transformer(
                InputTransformer::builder()
                    .input_paths_map("time", "$.time")
                    .input_template(template)
                    .build()
                    .map_err(build_err)?,
            )
            .build()
            .map_err(build_err)?;
        let out = self
            .client
            .put_targets()
            .rule(&rule)
            .targets(target)
            .send()
            .await
            .map_err(|e| self.err("add the target to", &spec.name, e))?;
        if out.failed_entry_count() > 0 {
            let detail = out
                .failed_entries()
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.error_code().unwrap_or("error"),
                        f.error_message().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ChannelError::TargetRefused { rule, detail });
        }
        Ok(!existed)
    }

    /// Every channel, sorted by name.
    pub async fn list(&self) -> Result<Vec<Channel>, ChannelError> {
        let mut rules = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_rules()
                .name_prefix(RULE_PREFIX)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.err("list", "*", e))?;
            rules.extend(page.rules().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let mut out = Vec::new();
        for r in rules {
            let Some(name) = r.name().and_then(|n| n.strip_prefix(RULE_PREFIX)) else {
                continue;
            };
            out.push(self.describe_rule(name, &r).await?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One channel.
    pub async fn get(&self, name: &str) -> Result<Channel, ChannelError> {
        check_name(name)?;
        let rule = self
            .client
            .describe_rule()
            .name(rule_name(name))
            .send()
            .await
            .map_err(|e| self.err("describe", name, e))?;
        let r = aws_sdk_eventbridge::types::Rule::builder()
            .set_name(rule.name().map(str::to_string))
            .set_schedule_expression(rule.schedule_expression().map(str::to_string))
            .set_state(rule.state().cloned())
            .build();
        self.describe_rule(name, &r).await
    }

    async fn describe_rule(
        &self,
        name: &str,
        r: &aws_sdk_eventbridge::types::Rule,
    ) -> Result<Channel, ChannelError> {
        let targets = self
            .client
            .list_targets_by_rule()
            .rule(rule_name(name))
            .send()
            .await
            .map_err(|e| self.err("list the targets of", name, e))?;
        let target = targets.targets().iter().find(|t| t.id() == TARGET_ID);
        Ok(Channel {
            name: name.to_string(),
            rule: rule_name(name),
            schedule: r.schedule_expression().unwrap_or_default().to_string(),
            enabled: r.state() == Some(&RuleState::Enabled),
            target: target.map(|t| t.arn().to_string()),
            request: target
                .and_then(|t| t.input_transformer())
                .and_then(|i| parse_input_template(i.input_template())),
        })
    }

    /// Stops the channel's schedule (the rule stays).
    pub async fn pause(&self, name: &str) -> Result<(), ChannelError> {
        check_name(name)?;
        self.client
            .disable_rule()
            .name(rule_name(name))
            .send()
            .await
            .map_err(|e| self.err("disable", name, e))?;
        Ok(())
    }

    /// Restarts the channel's schedule.
    pub async fn resume(&self, name: &str) -> Result<(), ChannelError> {
        check_name(name)?;
        self.client
            .enable_rule()
            .name(rule_name(name))
            .send()
            .await
            .map_err(|e| self.err("enable", name, e))?;
        Ok(())
    }

    /// Removes the channel: its targets, then its rule.
    pub async fn remove(&self, name: &str) -> Result<(), ChannelError> {
        check_name(name)?;
        let rule = rule_name(name);
        let targets = self
            .client
            .list_targets_by_rule()
            .rule(&rule)
            .send()
            .await
            .map_err(|e| self.err("list the targets of", name, e))?;
        let ids: Vec<String> = targets
            .targets()
            .iter()
            .map(|t| t.id().to_string())
            .collect();
        if !ids.is_empty() {
            self.client
                .remove_targets()
                .rule(&rule)
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(|e| self.err("remove the targets of", name, e))?;
        }
        self.client
            .delete_rule()
            .name(&rule)
            .send()
            .await
            .map_err(|e| self.err("delete", name, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ChannelSpec {
        ChannelSpec {
            name: "aita-daily".into(),
            schedule: "rate(6 hours)".into(),
            prompt: "Write an <AITA> post about \"cake\"".into(),
            seconds: Some(45),
            style: None,
            voice: VoiceOptions {
                engine: "polly-neural".into(),
                voice: "Joanna".into(),
                rate: None,
            },
            background: Some(BackgroundSelector::Tag("parkour".into())),
            card: None,
            publish: Vec::new(),
        }
    }

    #[test]
    fn schedules_are_checked_like_eventbridge() {
        for ok in [
            "rate(1 minute)",
            "rate(6 hours)",
            "rate(2 days)",
            "cron(0 12 * * ? *)",
            "cron(0/15 8-17 ? * MON-FRI *)",
            "cron(0 18 L * ? 2030)",
            "cron(30 9 ? * 2#1 *)",
            "cron(0 0 15W JAN,JUL ? *)",
        ] {
            check_schedule(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("rate(1 hours)", "unit \"hours\" with 1"),
            ("rate(6 hour)", "unit \"hour\" with 6"),
            ("rate(0 minutes)", "not a whole number"),
            ("rate(6  hours)", "expected rate(N unit)"),
            ("cron(0 12 * * *)", "5 cron fields"),
            ("cron(0 12 * * * *)", "exactly one of"),
            ("cron(60 12 * * ? *)", "not in 0-59"),
            ("cron(0 12 * FOO ? *)", "month field"),
            ("every 6 hours", "expected rate(N unit) or cron"),
        ] {
            let e = check_schedule(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn names_are_rule_suffixes() {
        assert!(check_name("aita-daily.v2_x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("with space").is_err());
        assert!(check_name(&"x".repeat(47)).is_err());
        assert!(check_name(&"x".repeat(46)).is_ok());
    }

    #[test]
    fn template_carries_the_tick_time_and_no_stray_placeholders() {
        let t = input_template(&spec()).unwrap();
        assert_eq!(t.matches('<').count(), 1, "{t}");
        assert!(t.contains(r#""time":<time>"#), "{t}");
        assert!(t.contains(r"\u003cAITA\u003e"), "{t}");
        // What EventBridge sends for a tick.
        let sent: Value =
            serde_json::from_str(&t.replace("<time>", "\"2026-01-01T06:00:00Z\"")).unwrap();
        assert_eq!(
            sent["story"]["prompt"],
            "Write an <AITA> post about \"cake\""
        );
        assert_eq!(sent["trigger"]["time"], "2026-01-01T06:00:00Z");
        assert_eq!(sent[BACKGROUND_SELECTOR_FIELD]["tag"], "parkour");
        let mut plain = sent.clone();
        plain
            .as_object_mut()
            .unwrap()
            .remove(BACKGROUND_SELECTOR_FIELD);
        let req: JobRequest = serde_json::from_value(plain).unwrap();
        assert_eq!(req.trigger.unwrap().channel, "aita-daily");
        assert_eq!(req.story.seconds, Some(45));
        assert_eq!(
            parse_input_template(&t).unwrap()["trigger"]["time"],
            Value::Null
        );
    }

    #[test]
    fn bad_requests_are_refused_before_any_call() {
        let mut s = spec();
        s.prompt = "x".repeat(MAX_PROMPT_CHARS + 1);
        assert!(matches!(
            input_template(&s),
            Err(ChannelError::InvalidRequest { .. })
        ));
        let mut s = spec();
        s.schedule = "rate(5 minute)".into();
        assert!(matches!(
            input_template(&s),
            Err(ChannelError::InvalidSchedule { .. })
        ));
        assert!(check_arn("arn:aws:states:us-east-1:1:stateMachine:x", "sm", "states").is_ok());
        assert!(check_arn("arn:aws:iam::1:role/x", "role", "iam").is_ok());
        assert!(check_arn("role/x", "role", "iam").is_err());
    }
}
