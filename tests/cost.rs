//! `storyreel cost` and the estimate every finished job records (issue "Deployable").

use std::process::Command;

use serde_json::Value;

use crate::support;

fn storyreel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_storyreel"))
}

/// `storyreel cost --json ARGS`.
fn cost(args: &[&str]) -> Value {
    let out = support::run(storyreel().arg("cost").arg("--json").args(args));
    serde_json::from_slice(&out.stdout).expect("cost --json prints JSON")
}

fn total(v: &Value) -> f64 {
    v["estimate"]["total_usd"].as_f64().expect("a total")
}

/// The sum of one service's terms.
fn service(v: &Value, name: &str) -> f64 {
    v["estimate"]["terms"]
        .as_array()
        .expect("terms")
        .iter()
        .filter(|t| t["service"] == name)
        .map(|t| t["usd"].as_f64().unwrap_or(f64::NAN))
        .sum()
}

#[test]
fn cost_prints_every_term_with_its_price_and_source() {
    let v = cost(&[]);
    assert_eq!(v["video"]["seconds"], 60);
    assert_eq!(v["video"]["engine"], "polly-neural");
    assert_eq!(v["video"]["chunks"], 7);
    // Story, Already done?, Narrate, Speech, Marks, Render chunks, 7 x Render chunk, Merge,
    // Publish: walked from the definition.
    assert_eq!(v["video"]["transitions"], 17);
    assert_eq!(v["video"]["lambda_requests"], 12);
    let terms = v["estimate"]["terms"].as_array().unwrap();
    for service in [
        "Polly",
        "Lambda",
        "Step Functions",
        "S3",
        "DynamoDB",
        "OpenAI",
        "EventBridge",
    ] {
        assert!(
            terms.iter().any(|t| t["service"] == service),
            "no {service} term: {v:#}"
        );
        let url = v["sources"][service].as_str().unwrap_or("");
        assert!(url.starts_with("https://"), "{service}: {url:?}");
    }
    for t in terms {
        assert!(
            t["price_usd"].as_f64().is_some() && t["per"].as_u64().is_some(),
            "{t}"
        );
        assert!(t["usd"].as_f64().unwrap() >= 0.0, "{t}");
    }
    // Polly bills the speech and the marks requests: 2 x 928 characters at $16 per 1M.
    assert!(
        (service(&v, "Polly") - 2.0 * 928.0 * 16e-6).abs() < 1e-9,
        "{v:#}"
    );
    let sum: f64 = terms.iter().map(|t| t["usd"].as_f64().unwrap()).sum();
    assert!((sum - total(&v)).abs() < 1e-9);
    assert_eq!(v["estimate"]["prices_as_of"], v["prices"]["as_of"]);
    assert!(!v["measured"]["machine"].as_str().unwrap_or("").is_empty());

    // The table says the same.
    let out = support::run(storyreel().arg("cost"));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "https://aws.amazon.com/polly/pricing/",
        "us-east-1",
        "render-chunk GB-seconds",
        "state transitions",
        "$16.00 per 1M characters",
        "total",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

#[test]
fn longer_videos_voices_and_prompts_cost_more() {
    let base = cost(&[]);
    let double = cost(&["--seconds", "120"]);
    assert!(
        total(&double) > 1.8 * total(&base),
        "{} vs {}",
        total(&double),
        total(&base)
    );
    assert!(service(&double, "Lambda") > 1.8 * service(&base, "Lambda"));
    let espeak = cost(&["--engine", "espeak"]);
    assert_eq!(service(&espeak, "Polly"), 0.0);
    let standard = cost(&["--engine", "polly-standard"]);
    let generative = cost(&["--engine", "polly-generative"]);
    assert!(total(&espeak) < total(&standard));
    assert!(total(&standard) < total(&base) && total(&base) < total(&generative));
    let prompt = cost(&["--prompt"]);
    assert!(service(&prompt, "OpenAI") > 0.0 && service(&base, "OpenAI") == 0.0);
    assert_eq!(cost(&["--prompt", "--no-prompt"])["video"]["prompt"], false);
    // More chunks: more invocations and transitions, the same frames.
    let many = cost(&["--chunks", "20"]);
    assert_eq!(many["video"]["chunks"], 20);
    assert_eq!(many["video"]["transitions"], 30);
    // Half the memory on the CPU-bound render: time doubles, the cost stays about the same.
    let small = cost(&["--memory", "1769"]);
    let render = |v: &Value| -> f64 {
        v["estimate"]["terms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["item"].as_str().unwrap_or("").starts_with("render-chunk"))
            .map(|t| t["quantity"].as_f64().unwrap())
            .sum()
    };
    let ratio = render(&small) / render(&base);
    assert!(
        (0.7..1.5).contains(&ratio),
        "GB-s 1769 MB / 3538 MB = {ratio}"
    );
}

#[test]
fn bad_options_name_the_value_and_the_range() {
    for (args, needle) in [
        (
            &["--seconds", "0"][..],
            "seconds 0 is out of range (expected 1..=1800)",
        ),
        (&["--seconds", "4000"][..], "seconds 4000 is out of range"),
        (
            &["--memory", "20000"][..],
            "memory 20000 MB is out of range (expected 128..=10240)",
        ),
        (
            &["--chunk-frames", "2"][..],
            "chunk frames 2 is out of range (expected 8..=18000)",
        ),
        (
            &["--chunks", "0"][..],
            "chunks 0 is out of range for 1815 frames (expected 1..=226: 8..=18000 frames a chunk)",
        ),
        (
            &["--engine", "polly-fast"][..],
            "unknown speech engine \"polly-fast\"",
        ),
    ] {
        let out = storyreel().arg("cost").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_made_job_records_its_chunk_times_and_its_estimate() {
    let dir = support::tempdir();
    let story = support::write(
        dir.path(),
        "story.txt",
        "The Note\n\nSomeone left a note under my door every morning for a week. Each one \
         was a little closer to my handwriting. On Sunday it was mine.",
    );
    let out = dir.path().join("out");
    support::run(
        storyreel()
            .arg("make")
            .arg("--story")
            .arg(&story)
            .arg("--out")
            .arg(&out)
            .args(["--chunk-frames", "90"]),
    );
    let entry = std::fs::read_dir(out.join("jobs"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .expect("a job record");
    let job: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let chunks = job["chunks_total"].as_u64().unwrap();
    assert!(chunks >= 2, "{job:#}");
    // Every chunk rendered by this run says how long it took.
    let times = job["chunk_ms"].as_object().expect("chunk_ms");
    assert_eq!(times.len() as u64, chunks, "{job:#}");
    assert!(
        times.values().all(|ms| ms.as_u64().unwrap_or(0) > 0),
        "{job:#}"
    );
    // The estimate uses them, the job's own narration and its chunk count.
    let cost = &job["cost"];
    assert!(cost["total_usd"].as_f64().unwrap_or(0.0) > 0.0, "{job:#}");
    let terms = cost["terms"].as_array().unwrap();
    let render = terms
        .iter()
        .find(|t| t["item"].as_str().unwrap_or("").starts_with("render-chunk"))
        .expect("a render-chunk term");
    assert!(
        render["basis"]
            .as_str()
            .unwrap_or("")
            .contains("render times measured on this job"),
        "{render}"
    );
    let recorded_s: f64 = times.values().map(|ms| ms.as_f64().unwrap() / 1000.0).sum();
    // "render-chunk GB-seconds (<MB> MB x <s> s)"
    let mb: f64 = render["item"]
        .as_str()
        .and_then(|i| i.split('(').nth(1))
        .and_then(|i| i.split(' ').next())
        .and_then(|mb| mb.parse().ok())
        .expect("the memory in the item");
    let billed_s = render["quantity"].as_f64().unwrap() / (mb / 1024.0);
    assert!(
        (billed_s - recorded_s).abs() < 0.01 * chunks as f64,
        "{billed_s} vs {recorded_s}"
    );
    // espeak narration: no Polly characters; the transitions follow the chunk count.
    let polly: f64 = terms
        .iter()
        .filter(|t| t["service"] == "Polly")
        .map(|t| t["usd"].as_f64().unwrap())
        .sum();
    assert_eq!(polly, 0.0);
    let sfn = terms
        .iter()
        .find(|t| t["service"] == "Step Functions")
        .unwrap();
    assert_eq!(sfn["quantity"].as_f64(), Some((10 + chunks) as f64));
    assert!(
        cost["basis"].as_str().unwrap_or("").contains("espeak"),
        "{cost}"
    );
}

/// The DynamoDB twin records chunk times and the estimate as the local job table does
/// (against moto, with the real client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_jobs_record_chunk_times_and_the_estimate() {
    use storyreel::cost;
    use storyreel::jobs::{JobRecord, JobStore, JobUpdate};

    use crate::moto::MotoConfig;
    let moto = crate::moto::Moto::start();
    let conf = moto.config().await;
    let jobs = crate::cloud::new_table(&conf, "cost-jobs").await;
    jobs.create(&JobRecord::new("j1", "e1", "text", "", None))
        .await
        .unwrap();
    // A retried chunk: the same update twice, then a slower second run; a reused chunk.
    for (index, millis) in [(0, 5000), (0, 5000), (1, 4600), (1, 5200)] {
        jobs.update("j1", JobUpdate::ChunkRendered { index, millis })
            .await
            .unwrap();
    }
    jobs.update("j1", JobUpdate::ChunkDone(2)).await.unwrap();
    let m = cost::Measured::embedded().unwrap();
    let facts = cost::VideoFacts::planned(
        &cost::PlannedVideo::default(),
        &m,
        storyreel::workflow::DEFINITION,
        &cost::STATED,
    )
    .unwrap();
    let estimate = cost::estimate(&cost::US_EAST_1, &cost::STATED, &m, &facts);
    jobs.update("j1", JobUpdate::Estimated(Box::new(estimate.clone())))
        .await
        .unwrap();
    let j = jobs.get("j1").await.unwrap().unwrap();
    assert_eq!(j.chunks_done, [0, 1, 2].into());
    assert_eq!(j.chunk_ms, [(0, 5000), (1, 5200)].into());
    // Numbers come back through JSON text: equal to the last bits is not promised.
    let stored = j.cost.expect("the estimate");
    assert!((stored.total_usd - estimate.total_usd).abs() < 1e-15);
    assert_eq!(stored.terms.len(), estimate.terms.len());
    for (a, b) in stored.terms.iter().zip(&estimate.terms) {
        assert_eq!(
            (&a.service, &a.item, &a.basis),
            (&b.service, &b.item, &b.basis)
        );
        assert!((a.usd - b.usd).abs() < 1e-15 && (a.quantity - b.quantity).abs() < 1e-9);
    }
}
