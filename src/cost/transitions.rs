//! Step Functions state transitions of one execution, counted by walking the definition
//! (`statemachine/video.asl.json`), not typed in by hand: a state added to the definition
//! changes the count.
//!
//! Standard workflows bill every state entered: a Task, Pass, Choice, Parallel, Map, Succeed or
//! Fail state is one transition; a Parallel's branches and each Map iteration's inner states
//! count as well; every Retry attempt of a Task is one more. The walk follows the path of a run
//! in which nothing fails: `Next` until `End`, a Choice's `Default` branch (here: "not a
//! duplicate"), every branch of a Parallel, and `map_items` iterations of every Map.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a definition could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the state machine definition is not JSON: {0}")]
    Json(String),
    #[error("{scope}: no StartAt or States (expected a state machine or Map/Parallel branch)")]
    NoStates { scope: String },
    #[error("{scope}: state {name:?} does not exist (expected one of: {known})")]
    NoSuchState {
        scope: String,
        name: String,
        known: String,
    },
    #[error(
        "state {state:?}: unsupported Type {kind:?} (expected Task, Pass, Wait, Choice, Parallel, Map, Succeed or Fail)"
    )]
    UnknownType { state: String, kind: String },
    #[error("state {state:?}: a Choice without Default (the walk follows the Default branch)")]
    NoDefault { state: String },
    #[error("state {state:?}: neither Next nor End")]
    NoNext { state: String },
    #[error(
        "{scope}: state {state:?} is entered again (the walk is deterministic, so it would never end)"
    )]
    Loop { scope: String, state: String },
}

/// What one execution in which nothing fails goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transitions {
    /// States entered: the billed state transitions without retries.
    pub states: u64,
    /// Task invocations per `Resource` (e.g. `${RenderChunkFunctionArn}`): the Lambda requests.
    pub invocations: BTreeMap<String, u64>,
    /// Most retry attempts the Retry rules allow across those invocations (each one is one more
    /// transition and one more invocation): the worst case of a run that still succeeds.
    pub max_retries: u64,
}

impl Transitions {
    /// All Task invocations.
    pub fn tasks(&self) -> u64 {
        self.invocations.values().sum()
    }

    /// Invocations of the Task states whose `Resource` contains `name` (e.g. `RenderChunk`).
    pub fn invocations_of(&self, name: &str) -> u64 {
        self.invocations
            .iter()
            .filter(|(r, _)| r.contains(name))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Walks `definition` (ASL JSON) with `map_items` iterations in every Map state.
pub fn count_json(definition: &str, map_items: u64) -> Result<Transitions, TransitionError> {
    let v: Value =
        serde_json::from_str(definition).map_err(|e| TransitionError::Json(e.to_string()))?;
    count(&v, map_items)
}

/// Walks a parsed definition with `map_items` iterations in every Map state.
pub fn count(definition: &Value, map_items: u64) -> Result<Transitions, TransitionError> {
    let mut out = Transitions::default();
    walk(definition, "the state machine", 1, map_items, &mut out)?;
    Ok(out)
}

/// Walks one machine or branch, `times` times over.
fn walk(
    machine: &Value,
    scope: &str,
    times: u64,
    map_items: u64,
    out: &mut Transitions,
) -> Result<(), TransitionError> {
    let no_states = || TransitionError::NoStates {
        scope: scope.to_string(),
    };
    let states = machine
        .get("States")
        .and_then(Value::as_object)
        .ok_or_else(no_states)?;
    let mut name = machine
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(no_states)?
        .to_string();
    let mut seen = std::collections::HashSet::new();
    loop {
        let state = states
            .get(&name)
            .ok_or_else(|| TransitionError::NoSuchState {
                scope: scope.to_string(),
                name: name.clone(),
                known: states.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        if !seen.insert(name.clone()) {
            return Err(TransitionError::Loop {
                scope: scope.to_string(),
                state: name,
            });
        }
        out.states = out.states.saturating_add(times);
        let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "Task" => {
                let resource = state
                    .get("Resource")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                *out.invocations.entry(resource).or_default() += times;
                let retries: u64 = state
                    .get("Retry")
                    .and_then(Value::as_array)
                    .map(|rules| {
                        rules
                            .iter()
                            // ASL's default MaxAttempts is 3.
                            .map(|r| r.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3))
                            .sum()
                    })
                    .unwrap_or(0);
                out.max_retries = out
                    .max_retries
                    .saturating_add(retries.saturating_mul(times));
            }
            "Pass" | "Wait" | "Succeed" | "Fail" | "Choice" => {}
            "Parallel" => {
                let branches =
                    state
                        .get("Branches")
                        .and_then(Value::as_array)
                        .ok_or_else(|| TransitionError::NoStates {
                            scope: format!("Parallel {name:?}"),
                        })?;
                for (i, b) in branches.iter().enumerate() {
                    walk(b, &format!("branch {i} of {name:?}"), times, map_items, out)?;
                }
            }
            "Map" => {
                let inner = state
                    .get("ItemProcessor")
                    .or_else(|| state.get("Iterator"))
                    .ok_or_else(|| TransitionError::NoStates {
                        scope: format!("Map {name:?}"),
                    })?;
                walk(
                    inner,
                    &format!("iterations of {name:?}"),
                    times.saturating_mul(map_items),
                    map_items,
                    out,
                )?;
            }
            other => {
                return Err(TransitionError::UnknownType {
                    state: name,
                    kind: other.to_string(),
                });
            }
        }
        if matches!(kind, "Succeed" | "Fail") || state.get("End") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        let next = if kind == "Choice" {
            state
                .get("Default")
                .and_then(Value::as_str)
                .ok_or_else(|| TransitionError::NoDefault {
                    state: name.clone(),
                })?
        } else {
            state
                .get("Next")
                .and_then(Value::as_str)
                .ok_or_else(|| TransitionError::NoNext {
                    state: name.clone(),
                })?
        };
        name = next.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFINITION: &str = crate::workflow::DEFINITION;

    #[test]
    fn the_video_workflow_counts_every_state_entered() {
        // Story, Already done?, Narrate, Speech, Marks, Render chunks, N x Render chunk, Merge,
        // Publish, Publish later?, Published.
        for n in [1, 7, 40] {
            let t = count_json(DEFINITION, n).unwrap();
            assert_eq!(t.states, 10 + n, "{n} chunks");
            assert_eq!(t.invocations_of("RenderChunk"), n);
            assert_eq!(t.tasks(), 5 + n);
            // Every Task state has 6 + 4 retry attempts.
            assert_eq!(t.max_retries, 10 * (5 + n));
        }
    }

    #[test]
    fn adding_a_state_changes_the_count() {
        let mut v: Value = serde_json::from_str(DEFINITION).unwrap();
        let before = count(&v, 7).unwrap().states;
        let states = v["States"].as_object_mut().unwrap();
        states["Merge"]["Next"] = Value::from("Tidy");
        states.insert(
            "Tidy".into(),
            serde_json::json!({"Type": "Pass", "Next": "Publish"}),
        );
        assert_eq!(count(&v, 7).unwrap().states, before + 1);
        // A state inside the Map counts once per chunk.
        let inner = &mut v["States"]["Render chunks"]["ItemProcessor"]["States"];
        inner["Render chunk"]["Next"] = Value::from("Note");
        inner["Render chunk"].as_object_mut().unwrap().remove("End");
        inner.as_object_mut().unwrap().insert(
            "Note".into(),
            serde_json::json!({"Type": "Pass", "End": true}),
        );
        assert_eq!(count(&v, 7).unwrap().states, before + 1 + 7);
    }

    #[test]
    fn broken_definitions_are_named() {
        let e = count_json(
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"}}}"#,
            1,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the state machine: state \"B\" does not exist (expected one of: A)"
        );
        let e = count_json(
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"A"}}}"#,
            1,
        )
        .unwrap_err();
        assert!(matches!(e, TransitionError::Loop { .. }));
        let e = count_json(
            r#"{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[]}}}"#,
            1,
        )
        .unwrap_err();
        assert!(matches!(e, TransitionError::NoDefault { .. }));
        assert!(matches!(
            count_json("{", 1).unwrap_err(),
            TransitionError::Json(_)
        ));
    }
}
