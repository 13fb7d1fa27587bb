//! A loopback HTTP/1.1 server that speaks Amazon Polly's REST protocol well enough to judge
//! `PollySpeech` with the real `aws-sdk-polly` client: `POST /v1/speech` (SynthesizeSpeech) and
//! `GET /v1/voices` (DescribeVoices).
//!
//! It checks requests as Polly does (SigV4 authorisation present, known voice, engine the voice
//! supports, output format, sample rate for the format, mark types only with `json`, SSML
//! well-formed with escaped text, length limits) and answers with real audio: the text is spoken
//! by libespeak-ng, encoded to MP3 by ffmpeg's libmp3lame without a Xing/LAME tag (as Polly
//! streams it), and the marks come from the same synthesis, shaped as Polly's are (punctuation
//! outside the word, several marks for a URL, none for an emoji, byte offsets into the request
//! text, SSML included). It can be told to fail requests with Polly's errors.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use storyreel_audio::{Pcm, write_wav};
use storyreel_speech::{EspeakSpeech, SpeechSynth};

/// espeak's rate for Polly's 100 %: fast, to keep the tests quick.
pub const BASE_WPM: u32 = 300;

/// A voice the server offers: (id, name, language, additional languages, engines, espeak voice).
type VoiceRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

const VOICES: &[VoiceRow] = &[
    (
        "Joanna",
        "Joanna",
        "en-US",
        &[],
        &["standard", "neural", "generative"],
        "en-us",
    ),
    (
        "Matthew",
        "Matthew",
        "en-US",
        &[],
        &["standard", "neural", "generative"],
        "en-us",
    ),
    (
        "Danielle",
        "Danielle",
        "en-US",
        &[],
        &["neural", "long-form", "generative"],
        "en-us",
    ),
    ("Kevin", "Kevin", "en-US", &[], &["neural"], "en-us"),
    (
        "Brian",
        "Brian",
        "en-GB",
        &[],
        &["standard", "neural"],
        "en-gb",
    ),
    ("Aditi", "Aditi", "hi-IN", &["en-IN"], &["standard"], "en"),
    ("Hans", "Hans", "de-DE", &[], &["standard"], "de"),
    ("Lea", "Léa", "fr-FR", &[], &["standard", "neural"], "fr"),
];

/// A failure to answer with instead of synthesising.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, code: &'static str, message: &str) -> Self {
        Self {
            status,
            code,
            message: message.to_owned(),
        }
    }
}

/// One SynthesizeSpeech request as received.
#[derive(Debug, Clone)]
pub struct Logged {
    pub engine: String,
    pub voice: String,
    pub format: String,
    pub sample_rate: Option<String>,
    pub text_type: String,
    pub text: String,
    pub mark_types: Vec<String>,
    pub language: Option<String>,
}

/// One synthesis: espeak's audio and word/sentence marks for a plain text.
pub struct Synth {
    /// espeak's own audio (22,050 Hz), before MP3.
    pub pcm: Pcm,
    /// (time ms, start, end) of each word mark, byte offsets into the plain text, whole words.
    pub words: Vec<(u64, usize, usize)>,
    /// (time ms, start, end) of each sentence.
    pub sentences: Vec<(u64, usize, usize)>,
    mp3: Mutex<HashMap<u32, Arc<Vec<u8>>>>,
}

#[derive(Default)]
pub struct State {
    pub requests: Vec<Logged>,
    pub describe_requests: usize,
    /// Answers for the next SynthesizeSpeech requests, in order.
    pub fail_next: VecDeque<Failure>,
    /// Answer every SynthesizeSpeech request with this.
    pub fail_always: Option<Failure>,
    /// Billed-character limit per request (Polly: 3000).
    pub max_billed: usize,
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// DescribeVoices page size.
    pub page_size: usize,
    cache: HashMap<(String, String, u32), Arc<Synth>>,
}

pub struct PollyServer {
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl PollyServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            max_billed: 3000,
            page_size: 3,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || serve_connection(stream, &state));
            }
        });
        Self { url, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The synthesis the server made for this plain text (any voice and rate).
    pub fn synth_for(&self, plain: &str) -> Option<Arc<Synth>> {
        lock(&self.state)
            .cache
            .iter()
            .find(|(k, _)| k.0 == plain)
            .map(|(_, v)| v.clone())
    }

    /// The real `aws-sdk-polly` client pointed at this server.
    pub fn client(&self) -> aws_sdk_polly::Client {
        use aws_sdk_polly::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_polly::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIDTESTPOLLYSERVER",
                "test-secret-key",
                None,
                None,
                "polly-test-server",
            ))
            .endpoint_url(&self.url)
            .build();
        aws_sdk_polly::Client::from_conf(config)
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn error(f: &Failure) -> Response {
    Response {
        status: f.status,
        content_type: "application/json",
        headers: vec![(
            "x-amzn-ErrorType".to_owned(),
            format!(
                "{}:http://internal.amazon.com/coral/com.amazonaws.tts/",
                f.code
            ),
        )],
        body: json!({ "message": f.message }).to_string().into_bytes(),
    }
}

fn fail(status: u16, code: &'static str, message: impl Into<String>) -> Response {
    error(&Failure {
        status,
        code,
        message: message.into(),
    })
}

fn serve_connection(stream: TcpStream, state: &Mutex<State>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    // Keep-alive: requests until the client closes the connection.
    while let Some(request) = read_request(&mut reader) {
        let response = route(&request, state);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nx-amzn-RequestId: 00000000-test\r\n",
            response.status,
            if response.status < 400 { "OK" } else { "Error" },
            response.content_type,
            response.body.len()
        );
        for (k, v) in &response.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&response.body).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), percent_decode(v))
        })
        .collect();
    Some(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(req: &Request, state: &Mutex<State>) -> Response {
    // The SDK signs every request with SigV4 using the test credentials.
    let auth = req.headers.get("authorization").map_or("", String::as_str);
    if !auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTPOLLYSERVER/")
        || !auth.contains("/us-east-1/polly/aws4_request")
    {
        return fail(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/speech") => {
            {
                let mut s = lock(state);
                s.in_flight += 1;
                s.max_in_flight = s.max_in_flight.max(s.in_flight);
            }
            let response = synthesize(req, state);
            lock(state).in_flight -= 1;
            response
        }
        ("GET", "/v1/voices") => describe_voices(req, state),
        _ => fail(404, "UnknownOperationException", "unknown operation"),
    }
}

fn describe_voices(req: &Request, state: &Mutex<State>) -> Response {
    let page_size = {
        let mut s = lock(state);
        s.describe_requests += 1;
        s.page_size.max(1)
    };
    let engine = req.query.get("Engine");
    let additional = req
        .query
        .get("IncludeAdditionalLanguageCodes")
        .is_some_and(|v| v == "true");
    let all: Vec<Value> = VOICES
        .iter()
        .filter(|v| engine.is_none_or(|e| v.4.contains(&e.as_str())))
        .map(|&(id, name, lang, extra, engines, _)| {
            let mut v = json!({
                "Gender": "Female",
                "Id": id,
                "LanguageCode": lang,
                "LanguageName": lang,
                "Name": name,
                "SupportedEngines": engines,
            });
            if additional && !extra.is_empty() {
                v["AdditionalLanguageCodes"] = json!(extra);
            }
            v
        })
        .collect();
    let start: usize = match req.query.get("NextToken") {
        None => 0,
        Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
            Some(n) if n < all.len() => n,
            _ => {
                return fail(
                    400,
                    "InvalidNextTokenException",
                    "The NextToken is invalid.",
                );
            }
        },
    };
    let end = (start + page_size).min(all.len());
    let mut body = json!({ "Voices": all[start..end] });
    if end < all.len() {
        body["NextToken"] = json!(format!("page-{end}"));
    }
    Response {
        status: 200,
        content_type: "application/json",
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

fn synthesize(req: &Request, state: &Mutex<State>) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return fail(400, "SerializationException", "body is not json");
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let logged = Logged {
        engine: field("Engine").unwrap_or_else(|| "standard".to_owned()),
        voice: field("VoiceId").unwrap_or_default(),
        format: field("OutputFormat").unwrap_or_default(),
        sample_rate: field("SampleRate"),
        text_type: field("TextType").unwrap_or_else(|| "text".to_owned()),
        text: field("Text").unwrap_or_default(),
        mark_types: body
            .get("SpeechMarkTypes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        language: field("LanguageCode"),
    };
    let max_billed = {
        let mut s = lock(state);
        s.requests.push(logged.clone());
        if let Some(f) = s.fail_next.pop_front().or_else(|| s.fail_always.clone()) {
            return error(&f);
        }
        s.max_billed
    };

    // Validation, in Polly's order as far as it shows.
    let Some(&(_, _, lang, extra, engines, espeak_voice)) =
        VOICES.iter().find(|v| v.0 == logged.voice)
    else {
        let ids: Vec<&str> = VOICES.iter().map(|v| v.0).collect();
        return fail(
            400,
            "ValidationException",
            format!(
                "1 validation error detected: Value '{}' at 'voiceId' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                logged.voice,
                ids.join(", ")
            ),
        );
    };
    if !["standard", "neural", "long-form", "generative"].contains(&logged.engine.as_str()) {
        return fail(
            400,
            "ValidationException",
            format!(
                "Value '{}' at 'engine' failed to satisfy constraint",
                logged.engine
            ),
        );
    }
    if !engines.contains(&logged.engine.as_str()) {
        return fail(
            400,
            "EngineNotSupportedException",
            "This voice does not support the selected engine.",
        );
    }
    if let Some(l) = &logged.language
        && l != lang
        && !extra.contains(&l.as_str())
    {
        return fail(
            400,
            "LanguageNotSupportedException",
            format!("Language {l} is not supported by voice {}.", logged.voice),
        );
    }
    if body
        .get("LexiconNames")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return fail(400, "LexiconNotFoundException", "Lexicon not found");
    }
    let json_out = match logged.format.as_str() {
        "json" => true,
        "mp3" | "ogg_vorbis" | "pcm" => false,
        f => {
            return fail(
                400,
                "ValidationException",
                format!("Value '{f}' at 'outputFormat' failed to satisfy constraint"),
            );
        }
    };
    if !json_out && !logged.mark_types.is_empty() {
        return fail(
            400,
            "MarksNotSupportedForFormatException",
            "Speech marks are only available with json output.",
        );
    }
    if json_out && logged.mark_types.is_empty() {
        return fail(
            400,
            "ValidationException",
            "SpeechMarkTypes are required with json output.",
        );
    }
    for t in &logged.mark_types {
        if !["sentence", "ssml", "viseme", "word"].contains(&t.as_str()) {
            return fail(
                400,
                "ValidationException",
                format!("Value '{t}' at 'speechMarkTypes' failed to satisfy constraint"),
            );
        }
        if t == "ssml" && logged.text_type == "text" {
            return fail(
                400,
                "SsmlMarksNotSupportedForTextTypeException",
                "SSML speech marks are not supported for plain text-type input.",
            );
        }
    }
    let default_rate = if logged.engine == "standard" {
        22_050
    } else {
        24_000
    };
    let sample_rate = match (&logged.sample_rate, logged.format.as_str()) {
        (None, _) => default_rate,
        (Some(r), "mp3" | "ogg_vorbis" | "json")
            if ["8000", "16000", "22050", "24000", "44100", "48000"].contains(&r.as_str()) =>
        {
            r.parse().unwrap()
        }
        (Some(r), "pcm") if r == "8000" || r == "16000" => r.parse().unwrap(),
        (Some(r), _) => {
            return fail(
                400,
                "InvalidSampleRateException",
                format!("Sample rate {r} is not valid."),
            );
        }
    };
    if logged.format != "mp3" && !json_out {
        return fail(
            400,
            "ValidationException",
            "this test server speaks mp3 and json only",
        );
    }

    // Text: plain, or SSML parsed to plain text with the map back to the document.
    let (plain, map, rate_percent) = match logged.text_type.as_str() {
        "text" => {
            let map: Vec<(usize, usize)> = logged
                .text
                .char_indices()
                .map(|(b, c)| (b, b + c.len_utf8()))
                .collect();
            (logged.text.clone(), map, 100)
        }
        "ssml" => match parse_ssml(&logged.text) {
            Ok(parsed) => parsed,
            Err(why) => {
                return fail(
                    400,
                    "InvalidSsmlException",
                    format!("Invalid SSML request: {why}"),
                );
            }
        },
        t => {
            return fail(
                400,
                "ValidationException",
                format!("Value '{t}' at 'textType' failed to satisfy constraint"),
            );
        }
    };
    let billed = plain.chars().count();
    if billed > max_billed || logged.text.chars().count() > 6000 {
        return fail(
            400,
            "TextLengthExceededException",
            format!(
                "Maximum text length has been exceeded ({billed} billed characters, {} in all; limits {max_billed} and 6000)",
                logged.text.chars().count()
            ),
        );
    }

    let wpm = (BASE_WPM * rate_percent / 100).clamp(80, 450);
    let synth = match synth(state, &plain, espeak_voice, wpm) {
        Ok(s) => s,
        Err(e) => return fail(500, "ServiceFailureException", e),
    };
    let headers = vec![("x-amzn-RequestCharacters".to_owned(), billed.to_string())];
    if json_out {
        let body = polly_marks(&plain, &synth, &map, &logged.mark_types);
        Response {
            status: 200,
            content_type: "application/x-json-stream",
            headers,
            body: body.into_bytes(),
        }
    } else {
        match mp3(&synth, sample_rate) {
            Ok(bytes) => Response {
                status: 200,
                content_type: "audio/mpeg",
                headers,
                body: bytes.to_vec(),
            },
            Err(e) => fail(500, "ServiceFailureException", e),
        }
    }
}

/// Plain text, each plain character's byte range in the document, and the prosody rate in %.
type ParsedSsml = (String, Vec<(usize, usize)>, u32);

/// Parses the SSML subset Polly's callers use here: `<speak>`, `<prosody rate="N%">`, `<p>`,
/// `<s>`, `<break/>`, the five XML entities and numeric references. Returns the plain text,
/// each plain character's byte range in the document, and the rate.
fn parse_ssml(doc: &str) -> Result<ParsedSsml, String> {
    let mut plain = String::new();
    let mut map = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rate = 100;
    let mut i = 0;
    let bytes = doc.as_bytes();
    let mut seen_speak = false;
    while i < doc.len() {
        match bytes[i] {
            b'<' => {
                let close = doc[i..].find('>').ok_or("unterminated tag")? + i;
                let tag = &doc[i + 1..close];
                if let Some(name) = tag.strip_prefix('/') {
                    if stack.pop().as_deref() != Some(name.trim()) {
                        return Err(format!("unexpected closing tag </{name}>"));
                    }
                } else {
                    let self_closing = tag.ends_with('/');
                    let tag = tag.trim_end_matches('/');
                    let name = tag.split_whitespace().next().unwrap_or("");
                    match name {
                        "speak" if !seen_speak && stack.is_empty() => seen_speak = true,
                        "prosody" => {
                            if let Some(r) = tag.split("rate=\"").nth(1) {
                                let r = r.split('"').next().unwrap_or("");
                                let pct: u32 = r
                                    .strip_suffix('%')
                                    .and_then(|n| n.parse().ok())
                                    .ok_or(format!("bad prosody rate {r:?}"))?;
                                if !(20..=200).contains(&pct) {
                                    return Err(format!("prosody rate {pct}% out of range"));
                                }
                                rate = pct;
                            }
                        }
                        "p" | "s" | "break" => {}
                        _ => return Err(format!("unsupported tag <{name}>")),
                    }
                    if stack.is_empty() && name != "speak" {
                        return Err("text must be inside <speak>".to_owned());
                    }
                    if !self_closing {
                        stack.push(name.to_owned());
                    }
                }
                i = close + 1;
            }
            b'&' => {
                let semi = doc[i..].find(';').ok_or("bare & (expected an entity)")? + i;
                let name = &doc[i + 1..semi];
                let ch = match name {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad character reference")?,
                    n if n.starts_with('#') => n[1..]
                        .parse()
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad character reference")?,
                    _ => return Err(format!("unknown entity &{name};")),
                };
                if stack.is_empty() {
                    return Err("text outside <speak>".to_owned());
                }
                map.push((i, semi + 1));
                plain.push(ch);
                i = semi + 1;
            }
            _ => {
                let ch = doc[i..].chars().next().unwrap();
                if stack.is_empty() {
                    if ch.is_whitespace() {
                        i += ch.len_utf8();
                        continue;
                    }
                    return Err("text outside <speak>".to_owned());
                }
                if ch == '>' {
                    return Err("bare >".to_owned());
                }
                if (ch as u32) < 0x20 && !matches!(ch, '\t' | '\n' | '\r') {
                    return Err("control character".to_owned());
                }
                map.push((i, i + ch.len_utf8()));
                plain.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !stack.is_empty() || !seen_speak {
        return Err("unclosed tags".to_owned());
    }
    Ok((plain, map, rate))
}

fn synth(state: &Mutex<State>, plain: &str, voice: &str, wpm: u32) -> Result<Arc<Synth>, String> {
    // One synthesis per text, like Polly's deterministic output: libespeak-ng's output depends a
    // little on what it spoke before, so the audio and marks requests of a part, which arrive
    // concurrently, must share one synthesis. (espeak runs one synthesis at a time anyway.)
    static SYNTHESIS: Mutex<()> = Mutex::new(());
    let _one_at_a_time = SYNTHESIS.lock().unwrap_or_else(|e| e.into_inner());
    let key = (plain.to_owned(), voice.to_owned(), wpm);
    if let Some(s) = lock(state).cache.get(&key) {
        return Ok(s.clone());
    }
    let synth = match EspeakSpeech::new().synthesize(plain, voice, wpm) {
        Ok(n) => {
            let mut words = Vec::new();
            let mut sentences = Vec::new();
            for line in n.marks_jsonl.lines() {
                let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
                let m = (
                    v["time"].as_u64().unwrap(),
                    v["start"].as_u64().unwrap() as usize,
                    v["end"].as_u64().unwrap() as usize,
                );
                if v["type"] == "word" {
                    words.push(m);
                } else {
                    sentences.push(m);
                }
            }
            Synth {
                pcm: n.pcm,
                words,
                sentences,
                mp3: Mutex::new(HashMap::new()),
            }
        }
        // Text espeak cannot speak (only symbols): Polly answers with a little silence.
        Err(_) => Synth {
            pcm: Pcm::new(22_050, vec![0.0; 4410]),
            words: Vec::new(),
            sentences: Vec::new(),
            mp3: Mutex::new(HashMap::new()),
        },
    };
    let synth = Arc::new(synth);
    lock(state).cache.insert(key, synth.clone());
    Ok(synth)
}

/// Encodes `pcm` as Polly streams it: MP3 from libmp3lame at `rate`, no Xing/LAME tag.
pub fn encode_mp3(pcm: &Pcm, rate: u32, tagged: bool) -> Result<Vec<u8>, String> {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir();
    let wav = dir.join(format!("storyreel-polly-{}-{n}.wav", std::process::id()));
    let out = dir.join(format!("storyreel-polly-{}-{n}.mp3", std::process::id()));
    write_wav(&wav, pcm).map_err(|e| e.to_string())?;
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&wav)
        .args([
            "-ar",
            &rate.to_string(),
            "-ac",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
        ])
        .args(["-write_xing", if tagged { "1" } else { "0" }, "-f", "mp3"])
        .arg(&out)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let bytes = std::fs::read(&out).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&wav);
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        return Err(format!("ffmpeg failed: {status}"));
    }
    bytes
}

fn mp3(synth: &Synth, rate: u32) -> Result<Arc<Vec<u8>>, String> {
    if let Some(b) = synth.mp3.lock().unwrap().get(&rate) {
        return Ok(b.clone());
    }
    let bytes = Arc::new(encode_mp3(&synth.pcm, rate, false)?);
    synth.mp3.lock().unwrap().insert(rate, bytes.clone());
    Ok(bytes)
}

/// Polly-shaped marks: a word mark per run of letters and digits (with inner `'`, `’`, `.`,
/// `,` between them) of each spoken word, so punctuation is outside the range and a URL gives
/// several marks; words without a letter or digit (emoji, dashes) get none. Offsets are bytes of
/// the request text (the SSML document when SSML was sent).
fn polly_marks(plain: &str, synth: &Synth, map: &[(usize, usize)], types: &[String]) -> String {
    // Byte offset in the plain text → index of its character.
    let char_index: HashMap<usize, usize> = plain
        .char_indices()
        .enumerate()
        .map(|(i, (b, _))| (b, i))
        .collect();
    let doc_range = |start: usize, end: usize| -> (usize, usize) {
        let first = char_index[&start];
        let last = plain[..end]
            .char_indices()
            .last()
            .map(|(b, _)| char_index[&b])
            .unwrap();
        (map[first].0, map[last].1)
    };
    let mut out = String::new();
    let mut push = |time: u64, kind: &str, start: usize, end: usize| {
        let (s, e) = doc_range(start, end);
        out.push_str(
            &json!({"time": time, "type": kind, "start": s, "end": e, "value": &plain[start..end]})
                .to_string(),
        );
        out.push('\n');
    };
    let audio_ms = synth.pcm.duration_ms() as u64;
    let mut sentences = synth.sentences.iter().peekable();
    for (i, &(time, start, end)) in synth.words.iter().enumerate() {
        while let Some(&&(st, ss, se)) = sentences.peek() {
            if ss > start {
                break;
            }
            if types.iter().any(|t| t == "sentence") {
                push(st, "sentence", ss, se);
            }
            sentences.next();
        }
        if !types.iter().any(|t| t == "word") {
            continue;
        }
        let runs = word_runs(&plain[start..end]);
        let next = synth
            .words
            .get(i + 1)
            .map_or(audio_ms, |w| w.0)
            .max(time + 1);
        for (k, (a, b)) in runs.iter().enumerate() {
            let t = time + (next - time) * k as u64 / runs.len() as u64;
            push(t, "word", start + a, start + b);
        }
    }
    out
}

/// Byte ranges of the runs of letters and digits in a word (inner `'’.,` joined).
fn word_runs(word: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for (i, &(b, c)) in chars.iter().enumerate() {
        let joiner = matches!(c, '\'' | '’' | '.' | ',')
            && current.is_some()
            && chars.get(i + 1).is_some_and(|&(_, n)| n.is_alphanumeric());
        if c.is_alphanumeric() || joiner {
            let end = b + c.len_utf8();
            current = Some(current.map_or((b, end), |(s, _)| (s, end)));
        } else if let Some(r) = current.take() {
            runs.push(r);
        }
    }
    runs.extend(current);
    runs
}

#[test]
fn word_runs_split_like_polly() {
    let w = "“naïve”,";
    assert_eq!(
        word_runs(w)
            .iter()
            .map(|&(a, b)| &w[a..b])
            .collect::<Vec<_>>(),
        ["naïve"]
    );
    let w = "https://example.com/aita?id=42";
    assert_eq!(
        word_runs(w)
            .iter()
            .map(|&(a, b)| &w[a..b])
            .collect::<Vec<_>>(),
        ["https", "example.com", "aita", "id", "42"]
    );
    assert_eq!(word_runs("1,250"), [(0, 5)]);
    assert!(word_runs("🙂").is_empty());
    assert!(word_runs("—").is_empty());
}

#[test]
fn ssml_parser_maps_entities() {
    let doc = "<speak><prosody rate=\"150%\">a &amp; b&lt;</prosody></speak>";
    let (plain, map, rate) = parse_ssml(doc).unwrap();
    assert_eq!(plain, "a & b<");
    assert_eq!(rate, 150);
    assert_eq!(&doc[map[2].0..map[2].1], "&amp;");
    for bad in [
        "<speak>a & b</speak>",
        "<speak>a < b</speak>",
        "<speak><prosody>a</speak>",
        "a",
        "<speak><prosody rate=\"300%\">a</prosody></speak>",
        "<speak><foo>a</foo></speak>",
    ] {
        assert!(parse_ssml(bad).is_err(), "{bad}");
    }
}
