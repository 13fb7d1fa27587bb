//! Audio/video sync measured through ffmpeg's decoders: the caption highlight must move to the
//! next word on the frame where that word's click is heard, never between clicks.

use crate::support::*;

const CLICKS_MS: [u64; 6] = [800, 1700, 2500, 3600, 4400, 5300];
const WORDS: [&str; 6] = ["one", "two", "three", "four", "five", "six"];

/// Scaled-down decode size: a quarter of 1080x1920.
const W: usize = 270;
const H: usize = 480;

/// The highlighted word as seen in a frame: which pixels of the caption band are yellow, and
/// their centroid (for reports).
#[derive(Debug, Clone)]
struct Lit {
    mask: Vec<bool>,
    count: usize,
    centroid: (f64, f64),
}

/// The yellow pixels (R > 200, G > 180, B < 90) of the caption band, if there are enough to
/// be a word.
fn highlight(rgb: &[u8]) -> Option<Lit> {
    // Captions stay between 10% and 80% of the height.
    let band = H / 10..H * 8 / 10;
    let mut mask = Vec::with_capacity(band.len() * W);
    let (mut count, mut sx, mut sy) = (0usize, 0usize, 0usize);
    for y in band {
        for x in 0..W {
            let p = &rgb[(y * W + x) * 3..][..3];
            let yellow = p[0] > 200 && p[1] > 180 && p[2] < 90;
            mask.push(yellow);
            if yellow {
                count += 1;
                sx += x;
                sy += y;
            }
        }
    }
    // A word of three letters covers hundreds of pixels at this size; a few are noise.
    (count >= 30).then(|| Lit {
        mask,
        count,
        centroid: (sx as f64 / count as f64, sy as f64 / count as f64),
    })
}

/// Whether two frames highlight the same word: their yellow pixels mostly coincide (a new word,
/// even in the same place, has other letters).
fn same_word(a: &Lit, b: &Lit) -> bool {
    let differ = a.mask.iter().zip(&b.mask).filter(|(x, y)| x != y).count();
    differ * 5 < a.count.max(b.count)
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
    let lit: Vec<Option<Lit>> = frames.iter().map(|f| highlight(f)).collect();

    // Frames where the highlight lands on a new word (or lights up after none was lit).
    let mut moves = Vec::new();
    for n in 0..lit.len() {
        let prev = if n == 0 { None } else { lit[n - 1].as_ref() };
        if let Some(h) = &lit[n]
            && prev.is_none_or(|p| !same_word(p, h))
        {
            moves.push(n);
        }
    }
    let report = || {
        let mut s = String::from("frame time_s yellow_px centroid\n");
        for (n, h) in lit.iter().enumerate() {
            let (c, xy) = h
                .as_ref()
                .map_or((0, (0.0, 0.0)), |h| (h.count, h.centroid));
            s.push_str(&format!(
                "{n:4} {:.3} {c:5} ({:.1}, {:.1})\n",
                times[n], xy.0, xy.1
            ));
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

    // Nothing is lit before the first word; from each move until the next, the same word stays
    // lit, or goes out (a word's caption may end before the next word) and stays out.
    assert!(lit[..moves[0]].iter().all(Option::is_none), "{}", report());
    for (j, &n) in moves.iter().enumerate() {
        let end = moves.get(j + 1).copied().unwrap_or(lit.len());
        let word = lit[n].as_ref().expect("a move lights a word");
        let mut out = false;
        for (m, h) in lit.iter().enumerate().take(end).skip(n) {
            let steady = match h {
                Some(h) => !out && same_word(h, word),
                None => {
                    out = true;
                    true
                }
            };
            assert!(
                steady,
                "frame {m}: the highlight changed between clicks (word {} lit at frame {n})\n{}",
                j + 1,
                report()
            );
        }
    }
}
