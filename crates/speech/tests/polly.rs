//! PollySpeech end to end through the real aws-sdk-polly client and the loopback Polly server:
//! split and join, sync of joined marks with joined audio, the marks contract, MP3 delay,
//! retries and error mapping (issue #3).

use std::time::Duration;

use storyreel_audio::{click_track, find_clicks};
use storyreel_speech::{
    AudioPart, ErrorKind, MP3_UNTAGGED_DELAY_SAMPLES, POLLY_MAX_PART_CHARS, PollyEngine,
    PollySpeech, SpeechAudio, SpeechError, SpeechMarks, SpokenAudio, VoiceSpec, decode_mp3,
    join_marks, narrate,
};

use crate::common::{
    Mark, UNICODE_STORY, check_contract, envelope, ffmpeg_accepts, find_snippet, parse,
};
use crate::polly_server::{Failure, PollyServer, encode_mp3};

/// One frame at 30 fps, in ms: the sync tolerance.
const FRAME_MS: f64 = 1000.0 / 30.0;

fn polly(server: &PollyServer) -> PollySpeech {
    PollySpeech::new(server.client()).with_retries(3, Duration::from_millis(5))
}

/// A deterministic story of about `chars` characters: varied sentences (so audio does not
/// repeat), paragraphs, quotes, numbers.
pub fn long_story(chars: usize) -> String {
    const SUBJECTS: &[&str] = &[
        "My sister",
        "The landlord",
        "Our neighbour",
        "A stranger",
        "My best friend",
        "The old man",
        "Her boyfriend",
        "The manager",
        "My cousin",
        "Everyone at work",
    ];
    const VERBS: &[&str] = &[
        "borrowed",
        "painted",
        "forgot",
        "returned",
        "questioned",
        "photographed",
        "ignored",
        "celebrated",
        "cancelled",
        "rebuilt",
        "misplaced",
        "described",
    ];
    const OBJECTS: &[&str] = &[
        "the blue bicycle",
        "a wedding cake",
        "my grandmother's piano",
        "the garden fence",
        "twelve parking tickets",
        "a broken umbrella",
        "the kitchen window",
        "our holiday plans",
        "a pile of receipts",
        "the neighbour's parrot",
        "three thousand emails",
    ];
    const ENDINGS: &[&str] = &[
        "without asking anyone",
        "on a rainy Tuesday",
        "before lunch",
        "for no reason at all",
        "while I was asleep",
        "in front of the whole family",
        "twice in one week",
        "after midnight",
        "during the football match",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let mut story = String::new();
    let mut sentence = 0;
    while story.len() < chars {
        let s = format!(
            "{} {} {} {}",
            SUBJECTS[next(SUBJECTS.len())],
            VERBS[next(VERBS.len())],
            OBJECTS[next(OBJECTS.len())],
            ENDINGS[next(ENDINGS.len())]
        );
        match next(6) {
            0 => story.push_str(&format!("“{s}?” she asked. ")),
            1 => story.push_str(&format!("{s}, and it cost {} dollars! ", 10 + next(990))),
            _ => story.push_str(&format!("{s}. ")),
        }
        sentence += 1;
        if sentence % 7 == 0 {
            story.pop();
            story.push_str("\n\n");
        }
    }
    story.trim_end().to_owned()
}

/// The word mark holding byte `pos` of the text.
fn word_at(words: &[Mark], pos: usize) -> &Mark {
    words
        .iter()
        .find(|w| w.start <= pos && pos < w.end)
        .unwrap_or_else(|| panic!("no word mark at byte {pos}"))
}

/// The independent sync check: for the first, middle and last marked word of every part, finds
/// where the server's own (pre-MP3) audio from that word's mark lies in the joined audio, by
/// correlating loudness envelopes, and returns how far (ms) the joined marks put each word from
/// there. In sync means every distance is within one 30 fps frame.
fn sync_errors(server: &PollyServer, text: &str, audio: &SpokenAudio, words: &[Mark]) -> Vec<f64> {
    let joined_env = envelope(&audio.pcm.samples, audio.pcm.sample_rate);
    let mut errors = Vec::new();
    for (k, part) in audio.parts.iter().enumerate() {
        let synth = server
            .synth_for(&text[part.text_start..part.text_end])
            .unwrap_or_else(|| panic!("the server never spoke part {k}"));
        let part_env = envelope(&synth.pcm.samples, synth.pcm.sample_rate);
        let n = synth.words.len();
        for &(t0, s0, _) in [synth.words[0], synth.words[n / 2], synth.words[n - 1]].iter() {
            let joined = word_at(words, part.text_start + s0);
            // Up to 600 ms of the server's audio from the word's own mark.
            let t0 = t0 as usize;
            let snippet = &part_env[t0..(t0 + 600).min(part_env.len())];
            let expected = joined.time as usize;
            let (found, corr) = find_snippet(
                &joined_env,
                snippet,
                expected.saturating_sub(400),
                expected + 400,
            );
            assert!(
                corr > 0.9,
                "part {k}: {:?} not found near {expected} ms (best {corr:.2} at {found} ms)",
                joined.value
            );
            errors.push(found as f64 - expected as f64);
        }
    }
    errors
}

async fn speak(polly: &PollySpeech, text: &str, spec: &VoiceSpec) -> (SpokenAudio, String) {
    // As the workflow does: audio and marks concurrently, neither waiting on the other.
    let (audio, marks) = tokio::join!(polly.speak_audio(text, spec), polly.speak_marks(text, spec));
    let audio = audio.unwrap();
    let marks = marks.unwrap();
    // The parts travel through Step Functions as JSON.
    let wire = serde_json::to_string(&audio.parts).unwrap();
    let parts: Vec<AudioPart> = serde_json::from_str(&wire).unwrap();
    let marks: storyreel_speech::SpokenMarks =
        serde_json::from_str(&serde_json::to_string(&marks).unwrap()).unwrap();
    let joined = join_marks(text, &marks, &parts).unwrap();
    (audio, joined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_story_splits_joins_and_stays_in_sync() {
    let text = long_story(20_000);
    assert!((19_900..20_200).contains(&text.len()), "{}", text.len());
    let server = PollyServer::start();
    let polly = polly(&server);
    let spec = VoiceSpec::polly(PollyEngine::Standard, "Joanna");
    let (audio, joined) = speak(&polly, &text, &spec).await;

    assert!(audio.parts.len() >= 7, "{} parts", audio.parts.len());
    assert_eq!(audio.pcm.sample_rate, 22_050);
    assert_eq!(
        audio.parts.iter().map(|p| p.samples).sum::<u64>(),
        audio.pcm.len() as u64
    );
    {
        let state = server.state();
        assert_eq!(state.requests.len(), 2 * audio.parts.len());
        for r in &state.requests {
            assert!(r.text.chars().count() <= POLLY_MAX_PART_CHARS);
            assert_eq!(
                (r.engine.as_str(), r.text_type.as_str()),
                ("standard", "text")
            );
            // Parts end at sentence ends.
            let t = r.text.trim_end();
            assert!(
                t.ends_with('.') || t.ends_with('!'),
                "{:?}",
                &t[t.len() - 20..]
            );
        }
        assert!(state.max_in_flight <= 8, "{}", state.max_in_flight);
    }
    let words = check_contract(&text, &joined, audio.pcm.duration_ms());
    assert_eq!(words.len(), text.split_whitespace().count());
    let errors = sync_errors(&server, &text, &audio, &words);
    assert_eq!(errors.len(), 3 * audio.parts.len());
    assert!(errors.iter().all(|e| e.abs() <= FRAME_MS), "{errors:?}");
    ffmpeg_accepts(&audio.pcm, "polly-long.wav");

    // The check has teeth: had the parts kept their MP3 delay (decoded lengths 1105 samples
    // longer), the marks of later parts would land 50 ms per part late.
    let untrimmed: Vec<AudioPart> = audio
        .parts
        .iter()
        .map(|p| AudioPart {
            samples: p.samples + MP3_UNTAGGED_DELAY_SAMPLES as u64,
            ..*p
        })
        .collect();
    let marks = polly.speak_marks(&text, &spec).await.unwrap();
    let drifted = join_marks(&text, &marks, &untrimmed).unwrap();
    let drifted_words = parse(&drifted)
        .into_iter()
        .filter(|m| m.kind == "word")
        .collect::<Vec<_>>();
    let errors = sync_errors(&server, &text, &audio, &drifted_words);
    assert!(errors.iter().any(|e| e.abs() > FRAME_MS), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neural_ssml_rate_parts_stay_in_sync() {
    // Characters SSML must escape, a rate (so SSML is used), small parts: several SSML parts at
    // 24 kHz, with offsets mapped back from the SSML documents.
    let text = format!(
        "Tom & Jerry said \"hi\" <loudly>. It's 5 > 3, isn't it? {}",
        long_story(1500)
    );
    let server = PollyServer::start();
    let polly = polly(&server).with_max_part_chars(400);
    let mut spec = VoiceSpec::polly(PollyEngine::Neural, "joanna");
    spec.rate_wpm = Some(200);
    let (audio, joined) = speak(&polly, &text, &spec).await;
    assert!(audio.parts.len() >= 4, "{} parts", audio.parts.len());
    assert_eq!(audio.pcm.sample_rate, 24_000);
    {
        let state = server.state();
        for r in &state.requests {
            assert_eq!(r.text_type, "ssml");
            assert_eq!(r.engine, "neural");
            assert_eq!(r.voice, "Joanna", "canonical id");
            assert!(
                r.text.starts_with("<speak><prosody rate=\"125%\">"),
                "{}",
                r.text
            );
            assert!(r.text.chars().count() <= 400);
            if r.format == "mp3" {
                assert_eq!(r.sample_rate.as_deref(), Some("24000"));
            } else {
                assert_eq!(r.mark_types, ["word", "sentence"]);
                assert_eq!(r.sample_rate, None);
            }
        }
        // Parts are requested concurrently, so the escaped first sentence may be in any
        // recorded request, but it must be in one of each kind (audio and marks).
        for format in ["mp3", "json"] {
            assert!(
                state.requests.iter().any(|r| r.format == format
                    && r.text
                        .contains("Tom &amp; Jerry said &quot;hi&quot; &lt;loudly&gt;.")),
                "no {format} request carries the escaped first sentence"
            );
        }
    }
    let words = check_contract(&text, &joined, audio.pcm.duration_ms());
    assert_eq!(words[1].value, "&");
    assert_eq!(words[5].value, "<loudly>.");
    let errors = sync_errors(&server, &text, &audio, &words);
    assert!(errors.iter().all(|e| e.abs() <= FRAME_MS), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_story_marks_cover_every_word_once() {
    assert_eq!("floccinaucinihilipilifications".chars().count(), 30);
    let server = PollyServer::start();
    let polly = polly(&server);
    for (engine, voice) in [
        (PollyEngine::Standard, "Joanna"),
        (PollyEngine::Generative, "Danielle"),
    ] {
        let spec = VoiceSpec::polly(engine, voice);
        let n = narrate(&polly, &polly, UNICODE_STORY, &spec).await.unwrap();
        let words = check_contract(UNICODE_STORY, &n.marks_jsonl, n.pcm.duration_ms());
        for w in [
            "“I",
            "café",
            "🙂!",
            "https://example.com/aita?id=42",
            "—",
            "$5",
            "1990",
            "&",
            "<never>",
            "floccinaucinihilipilifications,",
        ] {
            assert_eq!(words.iter().filter(|m| m.value == w).count(), 1, "{w}");
        }
        // The server gave the URL several marks and the emoji none; the caption has one word
        // each, the URL at its first mark's time, the emoji 1 ms after the word before it.
        let url = words
            .iter()
            .position(|m| m.value.starts_with("https"))
            .unwrap();
        assert_eq!(words[url + 1].value, "—");
        assert_eq!(words[url + 1].time, words[url].time + 1);
        assert!(
            words[url + 2].time - words[url].time > 300,
            "{:?}",
            &words[url..url + 3]
        );
        let emoji = words.iter().position(|m| m.value == "🙂!").unwrap();
        assert_eq!(words[emoji].time, words[emoji - 1].time + 1);
        ffmpeg_accepts(&n.pcm, "polly-unicode.wav");
    }
    // Punctuation is on the word even though the engine's marks leave it out.
    let marks = parse(
        &narrate(
            &polly,
            &polly,
            "Hello, world!",
            &VoiceSpec::polly(PollyEngine::Standard, "Joanna"),
        )
        .await
        .unwrap()
        .marks_jsonl,
    );
    let values: Vec<&str> = marks
        .iter()
        .filter(|m| m.kind == "word")
        .map(|m| m.value.as_str())
        .collect();
    assert_eq!(values, ["Hello,", "world!"]);
}

#[test]
fn mp3_delay_is_removed_for_tagged_and_untagged_streams() {
    // Clicks at known times, encoded as the server (and Polly) stream MP3 and as a file with a
    // LAME tag, at both Polly rates: after decode_mp3 they are where they were.
    let clicks = [100.0, 600.0, 1234.5, 2000.0];
    for (src_rate, rate) in [(22_050, 22_050), (24_000, 24_000), (22_050, 24_000)] {
        let track = click_track(src_rate, 2500.0, &clicks);
        for tagged in [false, true] {
            let mp3 = encode_mp3(&track, rate, tagged).unwrap();
            let pcm = decode_mp3(&mp3).unwrap();
            assert_eq!(pcm.sample_rate, rate);
            let found = find_clicks(&pcm, 0.1, 50.0);
            assert_eq!(
                found.len(),
                clicks.len(),
                "{rate} Hz tagged={tagged}: {found:?}"
            );
            for (f, c) in found.iter().zip(clicks) {
                assert!(
                    (f - c).abs() < 1.0,
                    "{src_rate}->{rate} Hz tagged={tagged}: click at {c} ms decoded at {f:.2} ms"
                );
            }
            // The untrimmed stream really is late by the delay removed.
            if !tagged {
                let raw = storyreel_audio::decode_bytes(&mp3, Some("mp3")).unwrap();
                let late = find_clicks(&raw, 0.1, 50.0)[0] - clicks[0];
                let expected = MP3_UNTAGGED_DELAY_SAMPLES as f64 * 1000.0 / f64::from(rate);
                assert!((late - expected).abs() < 1.0, "{late} vs {expected}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_then_succeeds() {
    let server = PollyServer::start();
    let polly = polly(&server);
    server.state().fail_next.extend([
        Failure::new(400, "ThrottlingException", "Rate exceeded"),
        Failure::new(500, "ServiceFailureException", "Internal failure"),
    ]);
    let spec = VoiceSpec::polly(PollyEngine::Neural, "Kevin");
    let audio = polly.speak_audio("Hello there.", &spec).await.unwrap();
    assert!(audio.pcm.duration_ms() > 300.0);
    assert_eq!(
        server.state().requests.len(),
        3,
        "two failures, then success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_forever_is_a_retryable_error() {
    let server = PollyServer::start();
    let polly = polly(&server);
    server.state().fail_always = Some(Failure::new(400, "ThrottlingException", "Rate exceeded"));
    let spec = VoiceSpec::polly(PollyEngine::Standard, "Joanna");
    let err = polly.speak_marks("Hello there.", &spec).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable);
    assert_eq!(
        server.state().requests.len(),
        3,
        "retried up to the attempt limit"
    );
    assert_eq!(
        err.to_string(),
        "polly synthesize-speech failed on part 1 of 1 (bytes 0..12): ThrottlingException: Rate exceeded (retryable, retries exhausted)"
    );
    // The SDK error is kept whole as the source.
    let source = std::error::Error::source(&err).unwrap();
    assert!(
        source
            .downcast_ref::<aws_sdk_polly::error::SdkError<
                aws_sdk_polly::operation::synthesize_speech::SynthesizeSpeechError,
                aws_sdk_polly::config::http::HttpResponse,
            >>()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polly_errors_map_to_kinds_and_name_the_cause() {
    let server = PollyServer::start();
    let polly = polly(&server);
    let spec = VoiceSpec::polly(PollyEngine::Standard, "Joanna");
    for (status, code, kind, attempts) in [
        (400, "InvalidSsmlException", ErrorKind::InvalidInput, 1),
        (400, "LexiconNotFoundException", ErrorKind::InvalidInput, 1),
        (
            400,
            "EngineNotSupportedException",
            ErrorKind::InvalidInput,
            1,
        ),
        (
            400,
            "TextLengthExceededException",
            ErrorKind::InvalidInput,
            1,
        ),
        (403, "AccessDeniedException", ErrorKind::Fatal, 1),
        (503, "ServiceUnavailableException", ErrorKind::Retryable, 3),
    ] {
        server.state().requests.clear();
        server.state().fail_always = Some(Failure::new(status, code, "the reason"));
        let err = polly.speak_audio("Hello there.", &spec).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert!(
            err.to_string().contains(&format!("{code}: the reason")),
            "{err}"
        );
        assert!(matches!(err, SpeechError::Polly { .. }));
        assert_eq!(server.state().requests.len(), attempts, "{code}");
    }
    server.state().fail_always = None;

    // The real checks of the server, not injected: a part over Polly's limit.
    server.state().max_billed = 50;
    let err = polly
        .speak_audio(&"Hello there, my friend. ".repeat(20), &spec)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("TextLengthExceededException"),
        "{err}"
    );
    assert!(err.to_string().contains("part 1 of 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voices_are_listed_and_checked_before_synthesis() {
    let server = PollyServer::start();
    let polly = polly(&server);
    let all = polly.voices(None).await.unwrap();
    assert_eq!(all.len(), 8, "every page read: {all:?}");
    let aditi = all.iter().find(|v| v.identifier == "Aditi").unwrap();
    assert_eq!(aditi.languages, ["hi-IN", "en-IN"]);
    let neural = polly.voices(Some(PollyEngine::Neural)).await.unwrap();
    assert!(
        neural
            .iter()
            .all(|v| v.engines.iter().any(|e| e == "neural"))
    );
    assert!(!neural.iter().any(|v| v.identifier == "Hans"));
    let describes = server.state().describe_requests;
    assert_eq!(describes, 3, "8 voices, 3 per page, cached after");

    let err = polly
        .speak_audio("Hello.", &VoiceSpec::polly(PollyEngine::Neural, "Nobody"))
        .await
        .unwrap_err();
    assert!(matches!(err, SpeechError::UnknownVoice { .. }));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "unknown voice \"Nobody\" (expected one of 6 voices: Brian, Danielle, Joanna, Kevin, Lea, Matthew)"
    );
    let err = polly
        .speak_audio("Hello.", &VoiceSpec::polly(PollyEngine::Standard, "Kevin"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "voice \"Kevin\" does not support the standard engine (expected one of: neural)"
    );
    let mut spec = VoiceSpec::polly(PollyEngine::Standard, "Aditi");
    spec.language = Some("fr-FR".to_owned());
    let err = polly.speak_audio("Hello.", &spec).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "voice \"Aditi\" does not speak language \"fr-FR\" (expected one of: hi-IN, en-IN)"
    );
    spec.language = Some("en-IN".to_owned());
    polly.speak_audio("Hello.", &spec).await.unwrap();
    assert_eq!(
        server.state().requests.len(),
        1,
        "only the valid request reached synthesis"
    );
    assert_eq!(
        server.state().requests[0].language.as_deref(),
        Some("en-IN")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_text_and_specs_fail_before_any_request() {
    let server = PollyServer::start();
    let polly = polly(&server);
    let spec = VoiceSpec::polly(PollyEngine::Standard, "Joanna");
    for (text, start) in [
        ("", "text has no words to speak (0 bytes"),
        (" \n\t", "text has no words to speak (3 bytes"),
        ("— 🙂 … !!", "text has no speakable words (4 words"),
        ("a\0b", "text contains a nul character at byte 1"),
    ] {
        for err in [
            polly.speak_audio(text, &spec).await.unwrap_err(),
            polly.speak_marks(text, &spec).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().starts_with(start), "{text:?}: {err}");
        }
    }
    let mut fast = spec.clone();
    fast.rate_wpm = Some(500);
    let err = polly.speak_audio("Hello.", &fast).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid speaking rate 500 words per minute (expected 32 ..= 320)"
    );
    let err = polly
        .speak_audio("Hello.", &VoiceSpec::espeak("en-us"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal);
    assert_eq!(
        err.to_string(),
        "voice spec asks for the espeak engine but this adapter is polly"
    );
    assert!(server.state().requests.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_from_another_split_are_refused() {
    let server = PollyServer::start();
    let text = long_story(1200);
    let spec = VoiceSpec::polly(PollyEngine::Standard, "Joanna");
    let audio = polly(&server)
        .with_max_part_chars(300)
        .speak_audio(&text, &spec)
        .await
        .unwrap();
    let marks = polly(&server)
        .with_max_part_chars(500)
        .speak_marks(&text, &spec)
        .await
        .unwrap();
    let err = join_marks(&text, &marks, &audio.parts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal);
    assert!(
        err.to_string()
            .starts_with("speech marks and audio disagree: "),
        "{err}"
    );
}
