//! EspeakSpeech through the same split capabilities and join as Polly (`SpeechAudio`,
//! `SpeechMarks`, `join_marks`), issue #3.

use storyreel_speech::{
    ErrorKind, EspeakSpeech, SpeechAudio, SpeechMarks, VoiceSpec, join_marks, narrate,
};

use crate::common::{UNICODE_STORY, check_contract, ffmpeg_accepts};
use crate::polly::long_story;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_story_through_the_join_path() {
    let text = long_story(20_000);
    let mut spec = VoiceSpec::espeak("en-us");
    spec.rate_wpm = Some(300);
    let espeak = EspeakSpeech::new();
    let (audio, marks) = tokio::join!(
        espeak.speak_audio(&text, &spec),
        espeak.speak_marks(&text, &spec)
    );
    let (audio, marks) = (audio.unwrap(), marks.unwrap());
    assert_eq!(audio.parts.len(), 1);
    assert_eq!(audio.parts[0].samples, audio.pcm.len() as u64);
    assert_eq!(
        (marks.parts[0].text_start, marks.parts[0].text_end),
        (0, text.len())
    );
    let joined = join_marks(&text, &marks, &audio.parts).unwrap();
    // One synthesis served both halves, and the join keeps espeak's normal form as it is.
    assert_eq!(joined, marks.parts[0].marks_jsonl);
    let words = check_contract(&text, &joined, audio.pcm.duration_ms());
    assert_eq!(words.len(), text.split_whitespace().count());
    // 300 words a minute, give or take pauses.
    let minutes = audio.pcm.duration_ms() / 60_000.0;
    let wpm = words.len() as f64 / minutes;
    assert!((200.0..330.0).contains(&wpm), "{wpm} words per minute");
    ffmpeg_accepts(&audio.pcm, "espeak-long.wav");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_story_through_the_join_path() {
    let espeak = EspeakSpeech::new();
    let n = narrate(&espeak, &espeak, UNICODE_STORY, &VoiceSpec::espeak("en-us"))
        .await
        .unwrap();
    let words = check_contract(UNICODE_STORY, &n.marks_jsonl, n.pcm.duration_ms());
    for w in [
        "“I",
        "café",
        "🙂!",
        "https://example.com/aita?id=42",
        "$5",
        "1990",
        "&",
        "<never>",
    ] {
        assert_eq!(words.iter().filter(|m| m.value == w).count(), 1, "{w}");
    }
    ffmpeg_accepts(&n.pcm, "espeak-unicode.wav");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error() {
    let espeak = EspeakSpeech::new();
    let err = espeak
        .speak_audio("   ", &VoiceSpec::espeak("en-us"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().starts_with("text has no words"), "{err}");
    let err = espeak
        .speak_marks("Hello.", &VoiceSpec::espeak("no-such-voice"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .starts_with("unknown voice \"no-such-voice\""),
        "{err}"
    );
    let mut slow = VoiceSpec::espeak("en-us");
    slow.rate_wpm = Some(10);
    let err = espeak.speak_audio("Hello.", &slow).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid speaking rate 10 words per minute (expected 80 ..= 450)"
    );
    let err = espeak
        .speak_audio(
            "Hello.",
            &VoiceSpec::polly(storyreel_speech::PollyEngine::Neural, "Joanna"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fatal);
}
