//! One test (or a few) per construct the executor implements, with Step Functions' semantics.

use crate::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use storyreel_asl::{
    Event, Executor, ExecutorOptions, StateMachine, TaskContext, TaskError, TaskHandler,
    async_trait,
};

fn one_state(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

// ---- Pass and input/output processing -------------------------------------------------------

#[tokio::test]
async fn pass_result_and_result_path() {
    let def =
        one_state(json!({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "End": true}));
    let (out, _) = run(&def, Scripted::echo(), json!({"in": true})).await;
    assert_eq!(out, Ok(json!({"in": true, "r": {"x": 1}})));

    let def = one_state(json!({"Type": "Pass", "End": true}));
    let (out, _) = run(&def, Scripted::echo(), json!({"in": true})).await;
    assert_eq!(out, Ok(json!({"in": true})));
}

#[tokio::test]
async fn input_path_parameters_output_path() {
    let def = one_state(json!({
        "Type": "Pass",
        "InputPath": "$.a",
        "Parameters": {"b.$": "$.b", "fixed": [1, {"c.$": "$.c"}]},
        "ResultPath": "$.res",
        "OutputPath": "$.res",
        "End": true
    }));
    let (out, _) = run(&def, Scripted::echo(), json!({"a": {"b": 2, "c": 3}})).await;
    assert_eq!(out, Ok(json!({"b": 2, "fixed": [1, {"c": 3}]})));
}

#[tokio::test]
async fn null_paths_discard() {
    // InputPath null gives {}; ResultPath null keeps the raw input; OutputPath null gives {}.
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "InputPath": null, "ResultPath": "$.seen", "Next": "B"},
        "B": {"Type": "Pass", "Result": "ignored", "ResultPath": null, "Next": "C"},
        "C": {"Type": "Pass", "OutputPath": null, "End": true}
    }});
    let (out, events) = run(&def, Scripted::echo(), json!({"k": 1})).await;
    assert_eq!(out, Ok(json!({})));
    let outputs: Vec<Value> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StateExited { output, .. } => Some(output),
            _ => None,
        })
        .collect();
    assert_eq!(
        outputs,
        vec![
            json!({"k": 1, "seen": {}}),
            json!({"k": 1, "seen": {}}),
            json!({})
        ]
    );
}

#[tokio::test]
async fn missing_paths_are_runtime_errors() {
    for state in [
        json!({"Type": "Pass", "InputPath": "$.nope", "End": true}),
        json!({"Type": "Pass", "OutputPath": "$.nope", "End": true}),
        json!({"Type": "Pass", "Parameters": {"x.$": "$.nope"}, "End": true}),
    ] {
        let (out, _) = run(&one_state(state), Scripted::echo(), json!({})).await;
        failed("States.Runtime", &out);
    }
    let def = one_state(json!({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": true}));
    let (out, _) = run(&def, Scripted::echo(), json!({"a": "text"})).await;
    failed("States.ResultPathMatchFailure", &out);
}

#[tokio::test]
async fn context_object() {
    let def = one_state(json!({
        "Type": "Pass",
        "Parameters": {
            "id.$": "$$.Execution.Id",
            "name.$": "$$.Execution.Name",
            "input.$": "$$.Execution.Input",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
            "machine.$": "$$.StateMachine.Id",
            "retries.$": "$$.State.RetryCount"
        },
        "End": true
    }));
    let options = ExecutorOptions {
        state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:video".into(),
        ..options()
    };
    let (out, _) = run_with(&def, Scripted::echo(), json!({"story": "s"}), options).await;
    let out = out.unwrap();
    assert_eq!(
        out["id"],
        "arn:aws:states:us-east-1:123456789012:execution:video:test-run"
    );
    assert_eq!(out["name"], "test-run");
    assert_eq!(out["input"], json!({"story": "s"}));
    assert_eq!(out["state"], "S");
    assert_eq!(
        out["machine"],
        "arn:aws:states:us-east-1:123456789012:stateMachine:video"
    );
    assert_eq!(out["retries"], 0);
    let entered = out["entered"].as_str().unwrap();
    assert!(
        entered.len() == 24 && entered.ends_with('Z') && &entered[10..11] == "T",
        "{entered}"
    );
}

#[tokio::test]
async fn intrinsic_functions_in_parameters() {
    let def = one_state(json!({
        "Type": "Pass",
        "Parameters": {
            "key.$": "States.Format('jobs/{}/chunks/{}.mp4', $.job, $.chunk)",
            "range.$": "States.ArrayRange(0, $.count, 2)",
            "len.$": "States.ArrayLength($.list)",
            "second.$": "States.ArrayGetItem($.list, 1)",
            "sum.$": "States.MathAdd($.chunk, 1)",
            "json.$": "States.StringToJson('{\"a\":1}')",
            "text.$": "States.JsonToString($.list)",
            "merged.$": "States.JsonMerge($.o1, $.o2, false)",
            "arr.$": "States.Array($.job, States.Hash($.job, 'SHA-1'))",
            "id.$": "States.UUID()"
        },
        "End": true
    }));
    let input = json!({"job": "j1", "chunk": 3, "count": 4, "list": ["x", "y"], "o1": {"a": 1}, "o2": {"b": 2}});
    let (out, _) = run(&def, Scripted::echo(), input).await;
    let out = out.unwrap();
    assert_eq!(out["key"], "jobs/j1/chunks/3.mp4");
    assert_eq!(out["range"], json!([0, 2, 4]));
    assert_eq!(out["len"], 2);
    assert_eq!(out["second"], "y");
    assert_eq!(out["sum"], 4);
    assert_eq!(out["json"], json!({"a": 1}));
    assert_eq!(out["text"], "[\"x\",\"y\"]");
    assert_eq!(out["merged"], json!({"a": 1, "b": 2}));
    assert_eq!(
        out["arr"],
        json!(["j1", "67921242516c48ac712807f98c98ee138e64a471"])
    );
    assert_eq!(out["id"].as_str().unwrap().len(), 36);
}

// ---- Task -----------------------------------------------------------------------------------

#[tokio::test]
async fn task_with_function_arn_gets_effective_input() {
    let handler =
        Scripted::new(|_, input, _, _| Ok(json!({"doubled": input["n"].as_i64().unwrap() * 2})));
    let def = one_state(json!({
        "Type": "Task",
        "Resource": "${AFunctionArn}",
        "Parameters": {"n.$": "$.value"},
        "ResultSelector": {"d.$": "$.doubled"},
        "ResultPath": "$.result",
        "End": true
    }));
    let subs = std::collections::HashMap::from([("AFunctionArn".to_string(), FN_A.to_string())]);
    let machine = StateMachine::parse(&def.to_string(), &subs).unwrap();
    let out = Executor::new(machine, handler.clone())
        .execute("run", json!({"value": 21}))
        .await;
    assert_eq!(out, Ok(json!({"value": 21, "result": {"d": 42}})));
    let calls = handler.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].resource, FN_A);
    assert_eq!(calls[0].input, json!({"n": 21}));
    assert_eq!(calls[0].ctx.state_name, "S");
    assert_eq!(calls[0].ctx.path, "S");
    assert!(calls[0].ctx.execution_id.ends_with(":execution:local:run"));
}

#[tokio::test]
async fn task_lambda_invoke_integration() {
    let handler = Scripted::new(|_, input, _, _| Ok(json!({"got": input.clone()})));
    let def = json!({"StartAt": "Invoke", "States": {
        "Invoke": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "render-chunk", "Payload.$": "$"},
            "ResultPath": "$.raw",
            "Next": "Selected"
        },
        "Selected": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName.$": "$.fn", "Payload": {"fixed": 1}},
            "OutputPath": "$.Payload",
            "End": true
        }
    }});
    let (out, _) = run(&def, handler.clone(), json!({"fn": "merge"})).await;
    assert_eq!(out, Ok(json!({"got": {"fixed": 1}})));
    let calls = handler.calls();
    assert_eq!(calls[0].resource, "render-chunk");
    assert_eq!(calls[0].input, json!({"fn": "merge"}));
    assert_eq!(calls[1].resource, "merge");
    // The first state kept the whole Invoke response.
    let raw = &calls[1].input;
    assert_eq!(raw, &json!({"fixed": 1}));
}

#[tokio::test]
async fn lambda_invoke_response_shape() {
    let def = one_state(json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "End": true
    }));
    let (out, _) = run(&def, Scripted::echo(), json!({"a": 1})).await;
    let out = out.unwrap();
    assert_eq!(out["Payload"], json!({"a": 1}));
    assert_eq!(out["StatusCode"], 200);
    assert_eq!(out["ExecutedVersion"], "$LATEST");
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], 200);
}

#[tokio::test]
async fn task_errors_fail_the_execution_with_their_name() {
    let handler = Scripted::new(|_, _, _, _| Err(TaskError::new("InvalidStory", "empty story")));
    let def = one_state(json!({"Type": "Task", "Resource": FN_A, "End": true}));
    let (out, events) = run(&def, handler, json!({})).await;
    assert_eq!(failed("InvalidStory", &out), "empty story");
    assert!(
        events.events().iter().any(|e| matches!(e,
        Event::StateFailed { name, error: Some(err), .. } if name == "S" && err == "InvalidStory"))
    );
    assert!(matches!(
        events.events().last(),
        Some(Event::ExecutionFailed { .. })
    ));
}

// ---- Retry ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn retry_succeeds_on_the_third_attempt_with_backoff() {
    let handler = Scripted::new(|_, _, _, n| {
        if n < 2 {
            Err(TaskError::new(
                "Lambda.TooManyRequestsException",
                format!("throttled {n}"),
            ))
        } else {
            Ok(json!({"ok": true}))
        }
    });
    let def = one_state(json!({
        "Type": "Task",
        "Resource": FN_A,
        "Retry": [
            {"ErrorEquals": ["Other"], "MaxAttempts": 5},
            {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}
        ],
        "End": true
    }));
    let (out, events) = run(&def, handler.clone(), json!({})).await;
    assert_eq!(out, Ok(json!({"ok": true})));
    let calls = handler.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(2));
    assert_eq!(calls[2].at - calls[1].at, Duration::from_secs(6));
    let retry_counts: Vec<u32> = calls.iter().map(|c| c.ctx.retry_count).collect();
    assert_eq!(retry_counts, vec![0, 1, 2]);
    let retries: Vec<(u32, Duration)> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::TaskRetry {
                attempt,
                delay,
                error,
                ..
            } => {
                assert_eq!(error.as_deref(), Some("Lambda.TooManyRequestsException"));
                Some((attempt, delay))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        vec![(1, Duration::from_secs(2)), (2, Duration::from_secs(6))]
    );
    // Retrying does not enter the state again.
    assert_eq!(events.entered(), vec!["S"]);
}

#[tokio::test(start_paused = true)]
async fn retry_defaults_max_delay_and_jitter() {
    let always_fail = || Scripted::new(|_, _, _, _| Err(TaskError::new("Boom", "")));
    // Defaults: 3 retries, 1 s doubling.
    let def = one_state(
        json!({"Type": "Task", "Resource": FN_A, "Retry": [{"ErrorEquals": ["States.ALL"]}], "End": true}),
    );
    let handler = always_fail();
    let (out, _) = run(&def, handler.clone(), json!({})).await;
    failed("Boom", &out);
    let gaps: Vec<Duration> = handler
        .calls()
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .collect();
    assert_eq!(gaps, [1, 2, 4].map(Duration::from_secs));

    // MaxAttempts 0 never retries.
    let def = one_state(
        json!({"Type": "Task", "Resource": FN_A, "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 0}], "End": true}),
    );
    let handler = always_fail();
    let _ = run(&def, handler.clone(), json!({})).await;
    assert_eq!(handler.calls().len(), 1);

    // MaxDelaySeconds caps the backoff; FULL jitter stays within the capped interval.
    let def = one_state(json!({"Type": "Task", "Resource": FN_A, "Retry": [{
        "ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 3, "MaxAttempts": 4, "MaxDelaySeconds": 5
    }], "End": true}));
    let handler = always_fail();
    let _ = run(&def, handler.clone(), json!({})).await;
    let gaps: Vec<Duration> = handler
        .calls()
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .collect();
    assert_eq!(gaps, [3, 5, 5, 5].map(Duration::from_secs));

    let def = one_state(json!({"Type": "Task", "Resource": FN_A, "Retry": [{
        "ErrorEquals": ["Boom"], "IntervalSeconds": 10, "MaxAttempts": 20, "JitterStrategy": "FULL"
    }], "End": true}));
    let handler = always_fail();
    let _ = run(&def, handler.clone(), json!({})).await;
    let calls = handler.calls();
    assert_eq!(calls.len(), 21);
    let mut expected_max = 10.0f64;
    let mut all_full = true;
    for w in calls.windows(2) {
        let gap = (w[1].at - w[0].at).as_secs_f64();
        assert!(gap <= expected_max + 0.001, "gap {gap} > {expected_max}");
        all_full &= (gap - expected_max).abs() < 0.001;
        expected_max *= 2.0;
    }
    assert!(!all_full, "FULL jitter never shortened an interval");
}

#[tokio::test(start_paused = true)]
async fn time_scale_shortens_waits_and_retries() {
    let handler = Scripted::new(|_, _, _, n| {
        if n == 0 {
            Err(TaskError::new("E", ""))
        } else {
            Ok(json!(1))
        }
    });
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 100, "Next": "T"},
        "T": {"Type": "Task", "Resource": FN_A, "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 50}], "End": true}
    }});
    let options = ExecutorOptions {
        time_scale: 0.01,
        ..options()
    };
    let start = tokio::time::Instant::now();
    let (out, _) = run_with(&def, handler, json!({}), options).await;
    assert_eq!(out, Ok(json!(1)));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
}

// ---- Catch ----------------------------------------------------------------------------------

#[tokio::test]
async fn catch_with_result_path() {
    let handler = Scripted::new(|_, _, _, _| Err(TaskError::new("RenderFailed", "bad frame")));
    let def = json!({"StartAt": "Render", "States": {
        "Render": {
            "Type": "Task",
            "Resource": FN_A,
            "OutputPath": "$.never",
            "Catch": [
                {"ErrorEquals": ["Other"], "Next": "Wrong"},
                {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Record failure"}
            ],
            "End": true
        },
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Record failure": {"Type": "Pass", "End": true}
    }});
    let (out, events) = run(&def, handler, json!({"job": "j1"})).await;
    assert_eq!(
        out,
        Ok(json!({"job": "j1", "error": {"Error": "RenderFailed", "Cause": "bad frame"}}))
    );
    assert_eq!(events.entered(), vec!["Render", "Record failure"]);
}

#[tokio::test]
async fn catch_default_result_path_replaces_the_input() {
    let handler = Scripted::new(|_, _, _, _| Err(TaskError::new("E", "c")));
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": FN_A, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": true},
        "Done": {"Type": "Succeed"}
    }});
    let (out, _) = run(&def, handler, json!({"job": "j1"})).await;
    assert_eq!(out, Ok(json!({"Error": "E", "Cause": "c"})));
}

#[tokio::test]
async fn retries_exhausted_then_caught() {
    let handler = Scripted::new(|_, _, _, _| Err(TaskError::new("Flaky", "")));
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": FN_A,
              "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 1}],
              "Catch": [{"ErrorEquals": ["Flaky"], "ResultPath": "$.e", "Next": "Done"}], "End": true},
        "Done": {"Type": "Pass", "End": true}
    }});
    let options = ExecutorOptions {
        time_scale: 0.0,
        ..options()
    };
    let (out, _) = run_with(&def, handler.clone(), json!({}), options).await;
    assert_eq!(out, Ok(json!({"e": {"Error": "Flaky", "Cause": ""}})));
    assert_eq!(handler.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_and_what_catches_it() {
    struct Slow;
    #[async_trait]
    impl TaskHandler for Slow {
        async fn invoke(&self, _: &str, _: Value, _: &TaskContext) -> Result<Value, TaskError> {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(json!("late"))
        }
    }
    let def = |errors: Value| {
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": FN_A, "TimeoutSeconds": 5,
                  "Catch": [{"ErrorEquals": errors, "Next": "Caught"}], "End": true},
            "Caught": {"Type": "Pass", "End": true}
        }})
    };
    // States.TaskFailed matches every error except States.Timeout.
    let (out, _) = run(
        &def(json!(["States.TaskFailed"])),
        Arc::new(Slow),
        json!({}),
    )
    .await;
    failed("States.Timeout", &out);
    let start = tokio::time::Instant::now();
    let (out, _) = run(&def(json!(["States.Timeout"])), Arc::new(Slow), json!({})).await;
    assert_eq!(out.unwrap()["Error"], "States.Timeout");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let (out, _) = run(&def(json!(["States.ALL"])), Arc::new(Slow), json!({})).await;
    assert_eq!(out.unwrap()["Error"], "States.Timeout");
}

#[tokio::test]
async fn runtime_errors_are_not_caught_or_retried() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": FN_A, "Parameters": {"x.$": "$.missing"},
              "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let handler = Scripted::echo();
    let (out, _) = run(&def, handler.clone(), json!({})).await;
    let cause = failed("States.Runtime", &out);
    assert!(
        cause.contains("'$.missing'") && cause.contains("'x.$'"),
        "{cause}"
    );
    assert!(handler.calls().is_empty());
}

// ---- Choice ---------------------------------------------------------------------------------

#[tokio::test]
async fn choice_picks_the_first_matching_rule() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"And": [
                {"Variable": "$.kind", "StringEquals": "video"},
                {"Not": {"Variable": "$.chunks", "NumericLessThanEquals": 0}}
            ], "Next": "Render"},
            {"Or": [
                {"Variable": "$.title", "IsPresent": false},
                {"Variable": "$.title", "StringMatches": "draft*"}
            ], "Next": "Draft"},
            {"Variable": "$.at", "TimestampLessThanPath": "$.deadline", "Next": "Early"},
            {"Variable": "$.flag", "BooleanEquals": true, "Next": "Flagged"}
        ], "Default": "Other"},
        "Render": {"Type": "Pass", "Result": "render", "End": true},
        "Draft": {"Type": "Pass", "Result": "draft", "End": true},
        "Early": {"Type": "Pass", "Result": "early", "End": true},
        "Flagged": {"Type": "Pass", "Result": "flagged", "End": true},
        "Other": {"Type": "Pass", "Result": "other", "End": true}
    }});
    let cases = [
        (
            json!({"kind": "video", "chunks": 3, "title": "t"}),
            "render",
        ),
        (json!({"kind": "video", "chunks": 0}), "draft"),
        (json!({"kind": "audio", "title": "draft 2"}), "draft"),
        (
            json!({"kind": "x", "title": "x", "at": "2024-01-01T00:00:00Z", "deadline": "2024-06-01T00:00:00Z"}),
            "early",
        ),
        (
            json!({"kind": "x", "title": "x", "at": "2025-01-01T00:00:00Z", "deadline": "2024-06-01T00:00:00Z", "flag": true}),
            "flagged",
        ),
        (
            json!({"kind": "x", "title": "x", "at": "not a time", "deadline": "2024-06-01T00:00:00Z", "flag": "true"}),
            "other",
        ),
    ];
    for (input, expected) in cases {
        let (out, _) = run(&def, Scripted::echo(), input.clone()).await;
        assert_eq!(out, Ok(json!(expected)), "input {input}");
    }
}

#[tokio::test]
async fn choice_without_match_or_default_fails() {
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.v", "Choices": [
            {"Variable": "$.v", "NumericGreaterThan": 10, "Next": "Big"}]},
        "Big": {"Type": "Succeed"}
    }});
    let (out, _) = run(&def, Scripted::echo(), json!({"in": {"v": 3}})).await;
    failed("States.NoChoiceMatched", &out);
    let (out, _) = run(&def, Scripted::echo(), json!({"in": {"v": 30}})).await;
    assert_eq!(out, Ok(json!(30)));
    let (out, _) = run(&def, Scripted::echo(), json!({"in": {}})).await;
    failed("States.Runtime", &out);
}

// ---- Wait -----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn wait_forms() {
    let future = |secs: u64| {
        let t = std::time::SystemTime::now() + Duration::from_secs(secs);
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        // Format via the executor's own rule: a Pass state can't do it, so build it by hand.
        let (days, rem) = (d.div_euclid(86_400), d.rem_euclid(86_400));
        let (y, m, dd) = storyreel_asl::civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    };
    let cases = [
        (
            json!({"Type": "Wait", "Seconds": 7, "End": true}),
            json!({}),
            7,
        ),
        (
            json!({"Type": "Wait", "SecondsPath": "$.s", "End": true}),
            json!({"s": 4}),
            4,
        ),
        (
            json!({"Type": "Wait", "Timestamp": "2001-01-01T00:00:00Z", "End": true}),
            json!({}),
            0,
        ),
        (
            json!({"Type": "Wait", "TimestampPath": "$.t", "End": true}),
            json!({"t": future(3600)}),
            3599,
        ),
    ];
    for (state, input, at_least) in cases {
        let start = tokio::time::Instant::now();
        let (out, _) = run(&one_state(state.clone()), Scripted::echo(), input.clone()).await;
        assert_eq!(out, Ok(input), "{state}");
        let waited = start.elapsed().as_secs();
        assert!(
            waited >= at_least && waited <= at_least + 1,
            "{state}: waited {waited}"
        );
    }
    let (out, _) = run(
        &one_state(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true})),
        Scripted::echo(),
        json!({"s": -1}),
    )
    .await;
    failed("States.Runtime", &out);
}

// ---- Succeed and Fail -----------------------------------------------------------------------

#[tokio::test]
async fn fail_with_literals_paths_and_functions() {
    let def = one_state(json!({"Type": "Fail", "Error": "StoryInvalid", "Cause": "no text"}));
    let (out, _) = run(&def, Scripted::echo(), json!({})).await;
    assert_eq!(failed("StoryInvalid", &out), "no text");

    let def = one_state(
        json!({"Type": "Fail", "ErrorPath": "$.e.Error", "CausePath": "States.Format('step {} failed: {}', $.step, $.e.Cause)"}),
    );
    let (out, _) = run(
        &def,
        Scripted::echo(),
        json!({"step": "Merge", "e": {"Error": "MergeFailed", "Cause": "disk full"}}),
    )
    .await;
    assert_eq!(failed("MergeFailed", &out), "step Merge failed: disk full");

    let def = one_state(json!({"Type": "Fail"}));
    let (out, _) = run(&def, Scripted::echo(), json!({})).await;
    let err = out.unwrap_err();
    assert_eq!((err.error, err.cause), (None, None));
}

#[tokio::test]
async fn succeed_applies_paths() {
    let def = one_state(json!({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}));
    let (out, _) = run(&def, Scripted::echo(), json!({"a": {"b": 5}})).await;
    assert_eq!(out, Ok(json!(5)));
}

// ---- Parallel -------------------------------------------------------------------------------

#[tokio::test]
async fn parallel_runs_branches_and_keeps_their_order() {
    let handler =
        Scripted::new(|resource, input, _, _| Ok(json!({"from": resource, "text": input["text"]})));
    let def = json!({"StartAt": "Narrate", "States": {
        "Narrate": {
            "Type": "Parallel",
            "Parameters": {"text.$": "$.story"},
            "Branches": [
                {"StartAt": "Speech", "States": {"Speech": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:speech", "End": true}}},
                {"StartAt": "Marks", "States": {
                    "Marks": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:marks", "Next": "Count"},
                    "Count": {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength(States.StringSplit($.text, ' '))"}, "End": true}
                }}
            ],
            "ResultSelector": {"audio.$": "$[0].from", "words.$": "$[1].n"},
            "ResultPath": "$.narration",
            "End": true
        }
    }});
    let (out, events) = run(&def, handler, json!({"story": "a b c"})).await;
    assert_eq!(
        out,
        Ok(
            json!({"story": "a b c", "narration": {"audio": "arn:aws:lambda:us-east-1:1:function:speech", "words": 3}})
        )
    );
    let mut entered = events.entered();
    entered.sort();
    assert_eq!(
        entered,
        vec![
            "Narrate",
            "Narrate/0/Speech",
            "Narrate/1/Count",
            "Narrate/1/Marks"
        ]
    );
}

#[tokio::test]
async fn a_failing_branch_fails_the_parallel_which_can_catch_it() {
    let def = json!({"StartAt": "P", "States": {
        "P": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": true}}},
                {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "BranchBroke", "Cause": "b1"}}}
            ],
            "Catch": [{"ErrorEquals": ["BranchBroke"], "ResultPath": "$.failure", "Next": "Handled"}],
            "End": true
        },
        "Handled": {"Type": "Pass", "End": true}
    }});
    let (out, _) = run(&def, Scripted::echo(), json!({"x": 1})).await;
    assert_eq!(
        out,
        Ok(json!({"x": 1, "failure": {"Error": "BranchBroke", "Cause": "b1"}}))
    );
}

// ---- Map ------------------------------------------------------------------------------------

#[tokio::test]
async fn map_with_item_selector_and_context() {
    let handler =
        Scripted::new(|_, input, _, _| Ok(json!({"key": format!("chunk-{}", input["index"])})));
    let def = json!({"StartAt": "Render chunks", "States": {
        "Render chunks": {
            "Type": "Map",
            "ItemsPath": "$.plan.chunks",
            "ItemSelector": {
                "job.$": "$.job",
                "index.$": "$$.Map.Item.Index",
                "frames.$": "$$.Map.Item.Value.frames"
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Render chunk",
                "States": {"Render chunk": {"Type": "Task", "Resource": FN_A, "End": true}}
            },
            "ResultSelector": {"keys.$": "$[*].key"},
            "ResultPath": "$.chunks",
            "End": true
        }
    }});
    let input = json!({"job": "j1", "plan": {"chunks": [{"frames": [0, 10]}, {"frames": [10, 20]}, {"frames": [20, 25]}]}});
    let (out, events) = run(&def, handler.clone(), input.clone()).await;
    let mut expected = input.clone();
    expected["chunks"] = json!({"keys": ["chunk-0", "chunk-1", "chunk-2"]});
    assert_eq!(out, Ok(expected));
    let mut calls = handler.calls();
    calls.sort_by_key(|c| c.input["index"].as_u64());
    assert_eq!(
        calls[2].input,
        json!({"job": "j1", "index": 2, "frames": [20, 25]})
    );
    assert_eq!(calls[2].ctx.path, "Render chunks/2/Render chunk");
    let done = events
        .events()
        .iter()
        .filter(|e| matches!(e, Event::MapItemDone { total: 3, .. }))
        .count();
    assert_eq!(done, 3);
}

#[tokio::test]
async fn map_legacy_iterator_and_parameters() {
    let def = json!({"StartAt": "M", "States": {
        "M": {
            "Type": "Map",
            "Parameters": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "Iterator": {"StartAt": "Add", "States": {"Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.v, $.i)"}, "OutputPath": "$.sum", "End": true}}},
            "End": true
        }
    }});
    let (out, _) = run(&def, Scripted::echo(), json!([10, 20, 30])).await;
    assert_eq!(out, Ok(json!([10, 21, 32])));
    let (out, _) = run(&def, Scripted::echo(), json!([])).await;
    assert_eq!(out, Ok(json!([])));
    let (out, _) = run(&def, Scripted::echo(), json!({"not": "an array"})).await;
    failed("States.Runtime", &out);
}

/// Counts how many invocations run at once.
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait]
impl TaskHandler for Gauge {
    async fn invoke(&self, _: &str, input: Value, _: &TaskContext) -> Result<Value, TaskError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(input)
    }
}

async fn max_in_flight(concurrency: Value, items: usize, max_parallelism: usize) -> usize {
    let mut map = json!({
        "Type": "Map",
        "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": FN_A, "End": true}}},
        "End": true
    });
    match concurrency {
        Value::String(path) => map["MaxConcurrencyPath"] = json!(path),
        n => map["MaxConcurrency"] = n,
    }
    let def = json!({"StartAt": "M", "States": {"M": map}});
    let gauge = Arc::new(Gauge {
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let options = ExecutorOptions {
        max_parallelism,
        ..options()
    };
    let input: Vec<Value> = (0..items).map(|i| json!(i)).collect();
    let (out, _) = run_with(&def, gauge.clone(), json!(input), options).await;
    assert_eq!(out, Ok(json!(input)));
    gauge.max.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency_1_runs_one_at_a_time() {
    let start = tokio::time::Instant::now();
    assert_eq!(max_in_flight(json!(1), 8, 16).await, 1);
    assert_eq!(start.elapsed(), Duration::from_millis(800));
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency_4_runs_four_at_a_time() {
    let start = tokio::time::Instant::now();
    assert_eq!(max_in_flight(json!(4), 8, 16).await, 4);
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn map_concurrency_is_bounded_by_the_pool() {
    assert_eq!(max_in_flight(json!(0), 8, 3).await, 3);
    assert_eq!(max_in_flight(json!(6), 8, 3).await, 3);
    assert_eq!(max_in_flight(json!(0), 8, 16).await, 8);
}

#[tokio::test(start_paused = true)]
async fn map_max_concurrency_path() {
    let def_input = |n: u64| json!({"n": n, "items": [1, 2, 3, 4, 5, 6]});
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.n",
        "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": FN_A, "End": true}}},
        "End": true
    }}});
    for n in [2u64, 3] {
        let gauge = Arc::new(Gauge {
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        });
        let (out, _) = run(&def, gauge.clone(), def_input(n)).await;
        assert_eq!(out, Ok(json!([1, 2, 3, 4, 5, 6])));
        assert_eq!(gauge.max.load(Ordering::SeqCst), n as usize);
    }
}

#[tokio::test]
async fn a_failing_iteration_fails_the_map_and_stops_the_rest() {
    let handler = Scripted::new(|_, input, _, _| {
        if input == &json!(2) {
            Err(TaskError::new("ChunkFailed", "chunk 2"))
        } else {
            Ok(input.clone())
        }
    });
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": FN_A, "End": true}}},
        "End": true
    }}});
    let (out, _) = run(&def, handler.clone(), json!([0, 1, 2, 3, 4, 5])).await;
    assert_eq!(failed("ChunkFailed", &out), "chunk 2");
    assert_eq!(
        handler.calls().len(),
        3,
        "no iteration starts after the failure"
    );
}

// ---- Execution-level ------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn execution_timeout() {
    let def = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}});
    let (out, _) = run(&def, Scripted::echo(), json!({})).await;
    failed("States.Timeout", &out);
}

#[tokio::test]
async fn payload_quota() {
    let big = "x".repeat(storyreel_asl::MAX_PAYLOAD_BYTES);
    let handler = Scripted::new(move |_, _, _, _| Ok(json!(big.clone())));
    let def = one_state(json!({"Type": "Task", "Resource": FN_A,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Never"}], "End": true}));
    let mut def = def;
    def["States"]["Never"] = json!({"Type": "Succeed"});
    let (out, _) = run(&def, handler, json!({})).await;
    failed("States.DataLimitExceeded", &out);
}

#[tokio::test]
async fn events_trace_nested_states_in_order() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "M"},
        "M": {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": {"StartAt": "X", "States": {
            "X": {"Type": "Pass", "Next": "Y"}, "Y": {"Type": "Pass", "End": true}}}, "Next": "Z"},
        "Z": {"Type": "Succeed"}
    }});
    let (out, events) = run(&def, Scripted::echo(), json!([1, 2])).await;
    assert_eq!(out, Ok(json!([1, 2])));
    assert_eq!(
        events.entered(),
        vec!["A", "M", "M/0/X", "M/0/Y", "M/1/X", "M/1/Y", "Z"]
    );
    let all = events.events();
    assert!(
        matches!(all.first(), Some(Event::ExecutionStarted { execution_id, .. }) if execution_id.ends_with(":test-run"))
    );
    assert!(
        matches!(all.last(), Some(Event::ExecutionSucceeded { output }) if output == &json!([1, 2]))
    );
}

// ---- Validation -----------------------------------------------------------------------------

#[test]
fn unsupported_constructs_are_rejected_with_the_state_name() {
    let map_with = |field: &str, value: Value| {
        let mut state = json!({"Type": "Map", "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}}, "End": true});
        state[field] = value;
        json!({"StartAt": "Render chunks", "States": {"Render chunks": state}})
    };
    let task_with = |field: &str, value: Value| {
        let mut state = json!({"Type": "Task", "Resource": FN_A, "End": true});
        state[field] = value;
        json!({"StartAt": "Speech", "States": {"Speech": state}})
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            map_with("ItemReader", json!({})),
            "Render chunks",
            "ItemReader",
        ),
        (
            map_with("ResultWriter", json!({})),
            "Render chunks",
            "ResultWriter",
        ),
        (
            map_with("ItemBatcher", json!({})),
            "Render chunks",
            "ItemBatcher",
        ),
        (
            map_with("ToleratedFailureCount", json!(1)),
            "Render chunks",
            "ToleratedFailureCount",
        ),
        (
            json!({"StartAt": "Render chunks", "States": {"Render chunks": {"Type": "Map", "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}}, "End": true}}}),
            "Render chunks",
            "DISTRIBUTED",
        ),
        (
            task_with("HeartbeatSeconds", json!(10)),
            "Speech",
            "HeartbeatSeconds",
        ),
        (task_with("Credentials", json!({})), "Speech", "Credentials"),
        (task_with("Assign", json!({"x": 1})), "Speech", "Assign"),
        (
            task_with("QueryLanguage", json!("JSONata")),
            "Speech",
            "JSONata",
        ),
        (
            task_with("Resource", json!("arn:aws:states:::sqs:sendMessage")),
            "Speech",
            "sqs:sendMessage",
        ),
        (
            task_with(
                "Resource",
                json!("arn:aws:states:::lambda:invoke.waitForTaskToken"),
            ),
            "Speech",
            "waitForTaskToken",
        ),
        (
            task_with("Resource", json!("arn:aws:states:us-east-1:1:activity:a")),
            "Speech",
            "activity",
        ),
        (
            task_with("Parameters", json!({"x.$": "States.Unknown($.a)"})),
            "Speech",
            "States.Unknown",
        ),
        (
            task_with("Resultpath", json!("$.x")),
            "Speech",
            "unknown field \"Resultpath\"",
        ),
        (
            task_with("Parameters", json!({"x.$": "$..deep"})),
            "Speech",
            "deep scan",
        ),
        (
            task_with(
                "Retry",
                json!([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]),
            ),
            "Speech",
            "last",
        ),
        (
            task_with("Retry", json!([{"ErrorEquals": ["States.Typo"]}])),
            "Speech",
            "States.Typo",
        ),
        (
            task_with("Next", json!("Nowhere")),
            "Speech",
            "both Next and End",
        ),
        (
            json!({"StartAt": "Speech", "States": {"Speech": {"Type": "Task", "Resource": FN_A, "Next": "Nowhere"}}}),
            "Speech",
            "\"Nowhere\"",
        ),
        (
            json!({"StartAt": "Speech", "States": {"Speech": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f", "Qualifier": "live"}, "End": true}}}),
            "Speech",
            "Qualifier",
        ),
        (
            json!({"StartAt": "Speech", "States": {"Speech": {"Type": "Task", "Resource": "render-chunk", "End": true}}}),
            "Speech",
            "not an ARN",
        ),
        (
            json!({"StartAt": "Gate", "States": {"Gate": {"Type": "Choice", "Choices": [
                {"Variable": "$.x", "StringEqual": "a", "Next": "Gate"}]}}}),
            "Gate",
            "StringEqual",
        ),
        (
            json!({"StartAt": "Speech", "States": {"Speech": {"Type": "Activity", "End": true}}}),
            "Speech",
            "Activity",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
                {"StartAt": "Dup", "States": {"Dup": {"Type": "Pass", "End": true}}},
                {"StartAt": "Dup", "States": {"Dup": {"Type": "Pass", "End": true}}}], "End": true}}}),
            "Dup",
            "unique",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
                {"StartAt": "In", "States": {"In": {"Type": "Pass", "Next": "Out"}}}], "Next": "Out"},
                "Out": {"Type": "Succeed"}}}),
            "In",
            "\"Out\"",
        ),
        (
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2024-01-01T00:00:00Z", "End": true}}}),
            "W",
            "exactly one",
        ),
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
            "state machine",
            "JSONata",
        ),
    ];
    for (definition, state, what) in cases {
        let message = parse_err(&definition);
        assert!(
            message.contains(state),
            "{message:?} does not name {state:?}"
        );
        assert!(
            message.contains(what),
            "{message:?} does not mention {what:?}"
        );
    }
}

#[test]
fn definition_substitutions() {
    let def = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${TFunctionArn}", "End": true}}}"#;
    let err = StateMachine::parse(def, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("${TFunctionArn}"), "{err}");
    let subs = std::collections::HashMap::from([("TFunctionArn".to_string(), FN_A.to_string())]);
    assert!(StateMachine::parse(def, &subs).is_ok());
    assert!(StateMachine::parse("{not json", &subs).is_err());
}
