//! Audio/video sync measured through ffmpeg's decoders: the caption highlight must move to the
//! next word on the frame where that word's click is heard, never between clicks.

use crate::support::*;

const CLICKS_MS: [u64; 6] = [800, 1700, 2500, 3600, 4400, 5300];
const WORDS: [&str; 6] = ["one", "two", "three", "four", "five", "six"];

/// Scaled-down decode size: a quarter of 1080x1920.
const W: usize = 270;
const H: usize = 480;

/// Where the highlighted word is: centroid of the yellow pixels in the caption band.
fn highlight(rgb: &[u8]) -> Option<(f64, f64)> {
    // Captions stay between 10% and 80% of the height.
    let (mut n, mut sx, mut sy) = (0usize, 0usize, 0usize);
    for y in H / 10..H * 8 / 10 {
        for x in 0..W {
            let p = &rgb[(y * W + x) * 3..][..3];
            if p[0] > 200 && p[1] > 180 && p[2] < 90 {
                n += 1;
                sx += x;
                sy += y;
            }
        }
    }
    // A word of three letters covers hundreds of pixels at this size; a few are noise.
    (n >= 30).then(|| (sx as f64 / n as f64, sy as f64 / n as f64))
}

fn same_word(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 4.0 && (a.1 - b.1).abs() < 4.0
}

#[test]
fn issue2_highlight_moves_on_the_frame_its_click_is_heard() {
    let dir = tempdir();
    let d = dir.path();
    let clicks: Vec<f64> = CLICKS_MS.iter().map(|&t| t as f64).collect();
    let audio = click_wav(d, "clicks.wav", 6000.0, &clicks);
    let words: Vec<(&str, u64)> = WORDS.into_iter().zip(CLICKS_MS).collect();
    let marks = write(d, "marks.jsonl", marks_jsonl(&words));
    let out = d.join("sync.mp4");
    // The default preset (veryfast) has B-frames, so the video's edit list is exercised as
    // well as the AAC encoder delay.
    Job::new(&audio, &marks, &out).run_ok();

    // Clicks as the decoder plays them (edit list applied), found without the input times.
    let heard = storyreel_audio::find_clicks(&decode_audio(&out), 0.3, 100.0);
    assert_eq!(heard.len(), CLICKS_MS.len(), "clicks heard at {heard:?} ms");
    for (h, t) in heard.iter().zip(CLICKS_MS) {
        assert!(
            (h - t as f64).abs() <= 1.0,
            "click at {t} ms is heard at {h:.2} ms: the audio track is shifted"
        );
    }

    let frames = raw_frames(&out, &format!("scale={W}:{H}"), "rgb24", W * H * 3);
    let times = video_frame_times(&out);
    assert_eq!(frames.len() as u64, expected_frames(6000));
    assert_eq!(
        times.len(),
        frames.len(),
        "ffprobe and ffmpeg see the same frames"
    );
    for (n, t) in times.iter().enumerate() {
        assert!(
            (t - n as f64 / FPS as f64).abs() < 0.001,
            "frame {n} is presented at {t} s"
        );
    }
    let lit: Vec<Option<(f64, f64)>> = frames.iter().map(|f| highlight(f)).collect();

    // Frames where the highlight lands on a new word.
    let mut moves = Vec::new();
    let mut last: Option<(f64, f64)> = None;
    for (n, h) in lit.iter().enumerate() {
        if let Some(h) = *h {
            if last.is_none_or(|l| !same_word(l, h)) {
                moves.push(n);
            }
            last = Some(h);
        }
    }
    let report = || {
        let mut s = String::from("frame time_s highlight\n");
        for (n, h) in lit.iter().enumerate() {
            s.push_str(&format!("{n:4} {:.3} {h:?}\n", times[n]));
        }
        s
    };
    let move_times: Vec<f64> = moves.iter().map(|&n| times[n]).collect();
    assert_eq!(
        moves.len(),
        heard.len(),
        "the highlight moved at {move_times:?} s, the clicks are heard at {heard:?} ms\n{}",
        report()
    );
    let frame_s = 1.0 / FPS as f64;
    for (j, (&n, &click_ms)) in moves.iter().zip(&heard).enumerate() {
        let lag = times[n] - click_ms / 1000.0;
        assert!(
            (-0.001..=frame_s + 0.001).contains(&lag),
            "word {} ({:?}) lights up at frame {n} ({:.4} s), {:.1} ms after its click at \
             {click_ms:.2} ms (expected 0 to 33.3 ms)\n{}",
            j + 1,
            WORDS[j],
            times[n],
            lag * 1000.0,
            report()
        );
    }

    // Nothing is lit before the first word; from each move to the next the same word stays lit
    // (it may go out after the last word, but nothing else lights up).
    assert!(lit[..moves[0]].iter().all(Option::is_none), "{}", report());
    for (j, &n) in moves.iter().enumerate() {
        let end = moves.get(j + 1).copied().unwrap_or(lit.len());
        let word = lit[n];
        for (m, h) in lit.iter().enumerate().take(end).skip(n) {
            let steady = match (h, word) {
                (Some(h), Some(w)) => same_word(*h, w),
                (None, _) => j + 1 == moves.len() && lit[m..].iter().all(Option::is_none),
                _ => false,
            };
            assert!(
                steady,
                "frame {m}: highlight {h:?} left word {} between clicks\n{}",
                j + 1,
                report()
            );
        }
    }
}
