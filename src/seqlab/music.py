"""Music from a music checkpoint: generate tunes, check them with music21, export MIDI and WAV.

A tune "parses" when music21 reads its ABC into a score holding at least one
note, without raising and within a time limit. MIDI comes from music21; WAV
from a MIDI synthesiser on PATH (timidity, or fluidsynth with a General MIDI
soundfont), so nothing here needs the network.
"""
from __future__ import annotations

import io
import shutil
import signal
import subprocess
import threading
import warnings
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .data.abc import CONDITION_FIELDS, TUNE_START, header, normalize_key, normalize_meter, titles_first
from .errors import SeqlabError
from .progress import ProgressReport, console_for

PARSE_SECONDS = 10.0  # music21 can crawl on a pathological tune; give up on one after this long
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2",
              "/usr/share/sounds/sf2/default-GM.sf2")
SYNTHESISER_PACKAGES = "sudo apt-get install timidity (or fluidsynth fluid-soundfont-gm)"


def _music21() -> Any:
    try:
        import music21
    except ImportError:
        raise SeqlabError("music21 is not installed; pip install music21") from None
    return music21


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the block after ``seconds`` (main thread only, where signals arrive; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def with_reference_number(tune: str, number: int = 1) -> str:
    """A tune as a complete ABC record: an X: line first (music21 and abc2midi want one)."""
    return tune if tune.startswith("X:") else f"X:{number}\n{tune}"


def parse_tune(tune: str, *, seconds: float = PARSE_SECONDS) -> Any:
    """ABC text -> a music21 Score; raises ValueError naming why music21 cannot read it (or found no notes)."""
    music21 = _music21()
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()), _time_limit(seconds):  # music21 warns on stderr
            warnings.simplefilter("ignore")
            score = music21.converter.parse(with_reference_number(tune), format="abc")
    except Exception as error:  # music21 raises anything from IndexError to ZeroDivisionError on bad ABC
        raise ValueError(f"{type(error).__name__}: {error}") from None
    if not len(score.flatten().notes):
        raise ValueError("no notes")
    return score


def tune_problem(tune: str, *, full: bool = True, seconds: float = PARSE_SECONDS) -> str | None:
    """Why music21 cannot read a tune, or None if it can.

    ``full``: build the whole score (``parse_tune``, ~30 ms a tune). Otherwise
    only music21's ABC tokenizer and parser run (~2 ms a tune), which is what
    raises on bad syntax; used to screen training sets of thousands of tunes.
    """
    if full:
        try:
            parse_tune(tune, seconds=seconds)
        except ValueError as error:
            return str(error)
        return None
    music21 = _music21()
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()), _time_limit(seconds):
            warnings.simplefilter("ignore")
            music21.abcFormat.ABCHandler().process(with_reference_number(tune))
    except Exception as error:  # see parse_tune
        return f"{type(error).__name__}: {error}"
    return None


MODE_NAMES = {"": "major", "m": "minor", "dor": "dorian", "phr": "phrygian", "lyd": "lydian", "mix": "mixolydian",
              "loc": "locrian"}


def music21_key(key: str) -> Any:
    """A normalized key ("D", "F#m", "Bb", "Ador") -> a music21 ``key.Key``."""
    music21 = _music21()
    size = 2 if key[1:2] in ("b", "#") else 1
    if key[size:] not in MODE_NAMES:
        raise ValueError(f"{key!r} is not a normalized key")
    return music21.key.Key(key[:size].replace("b", "-"), MODE_NAMES[key[size:]])


def analysed_key(score: Any) -> str:
    """The key music21 hears in the notes (``score.analyze("key")``, Krumhansl-Schmuckler key profiles
    correlated with the pitch-class durations), normalized like K: values: "D", "Em", "Bb"."""
    found = score.analyze("key")
    return found.tonic.name.replace("-", "b") + ("m" if found.mode == "minor" else "")


def key_relation(asked: str, found: str) -> str:
    """How an analysed key relates to the asked one (both normalized): "exact" (same tonic and mode),
    "related" (same tonic, or same key signature: the relative major/minor, or a mode on the same
    scale), or "other". Analysis names only major and minor keys, so a modal ask is at best "related"."""
    asked_key, found_key = music21_key(asked), music21_key(found)
    if asked_key.tonic.name == found_key.tonic.name and asked_key.mode == found_key.mode:
        return "exact"
    if asked_key.tonic.name == found_key.tonic.name or asked_key.sharps == found_key.sharps:
        return "related"
    return "other"


def bars_in_meter(score: Any, meter: str) -> tuple[int, int]:
    """(bars lasting one bar of ``meter``, bars counted): every bar of every part but its first (maybe a
    pickup) and last, its length the end of its last note or rest (music21's ``highestTime``, in
    quarter notes) against the meter's bar (6/8 -> 3 quarters). Independent of the tune's own M: line."""
    music21 = _music21()
    expected = music21.meter.TimeSignature(meter).barDuration.quarterLength
    matching = counted = 0
    for part in (score.parts or [score]):
        bars = list(part.getElementsByClass("Measure"))[1:-1]
        counted += len(bars)
        matching += sum(bar.highestTime == expected for bar in bars)
    return matching, counted


@dataclass
class TuneCheck:
    """One tune read by music21: why it cannot be read (or None); else the key in its notes and its bars."""

    problem: str | None
    key: str | None = None  # analysed, normalized ("D", "Em")
    key_relation: str | None = None  # to the asked key: "exact", "related" or "other"; None if none asked
    bars: int = 0  # bars counted (see bars_in_meter); 0 if no meter asked
    bars_in_meter: int = 0
    analysis_problem: str | None = None  # why music21's analysis failed on a tune it parsed: its notes are unchecked


def check_tune(tune: str, condition: dict[str, str] | None = None, *, seconds: float = PARSE_SECONDS) -> TuneCheck:
    """Parse a tune once and check its notes against the asked {"K": key, "M": meter} (either may be absent)."""
    condition = condition or {}
    try:
        score = parse_tune(tune, seconds=seconds)
    except ValueError as error:
        return TuneCheck(str(error))
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()), _time_limit(seconds):
            warnings.simplefilter("ignore")
            key = analysed_key(score)
            matching, counted = bars_in_meter(score, condition["M"]) if "M" in condition else (0, 0)
    except Exception as error:  # music21's analysis can fail on odd scores as its parser does: the notes go unchecked
        return TuneCheck(None, analysis_problem=f"{type(error).__name__}: {error}")
    relation = key_relation(condition["K"], key) if "K" in condition else None
    return TuneCheck(None, key, relation, counted, matching)


def export_midi(tune: str, path: str | Path) -> Path:
    """Write a tune as a standard MIDI file through music21; refuses one music21 cannot parse or cannot write
    (a score it read may still fail in its MIDI translation, e.g. "the object <TimeSignature 2/2> is already
    found in this Stream"), leaving no file."""
    try:
        score = parse_tune(tune)
    except ValueError as error:
        raise SeqlabError(f"music21 cannot parse the tune ({error}); no MIDI written") from None
    path = Path(path)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            score.write("midi", fp=str(path))
    except Exception as error:  # as in parse_tune: music21 raises anything on odd scores; this tune gets no MIDI
        path.unlink(missing_ok=True)
        raise SeqlabError(f"music21 cannot write the tune as MIDI ({type(error).__name__}: {error})") from None
    return path


def find_synthesiser() -> list[str] | None:
    """The command that renders MIDI to WAV, with {midi} and {wav} to fill in; None if none is installed."""
    if shutil.which("timidity"):
        return ["timidity", "-Ow", "-o", "{wav}", "{midi}"]
    soundfont = next((font for font in SOUNDFONTS if Path(font).is_file()), None)
    if shutil.which("fluidsynth") and soundfont:
        return ["fluidsynth", "-ni", "-F", "{wav}", "-r", "44100", soundfont, "{midi}"]
    return None


def export_wav(midi_path: str | Path, wav_path: str | Path) -> Path:
    """Render a MIDI file to WAV with timidity or fluidsynth."""
    command = find_synthesiser()
    if command is None:
        raise SeqlabError(f"no MIDI synthesiser found for --wav; install one: {SYNTHESISER_PACKAGES}")
    filled = [part.format(midi=midi_path, wav=wav_path) for part in command]
    result = subprocess.run(filled, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not Path(wav_path).is_file():
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SeqlabError(f"{command[0]} could not render {midi_path} ({last[0]})")
    return Path(wav_path)


@dataclass
class MusicReport:
    """What ``make_music`` generated and how the tunes fared (``check_tune`` on each, against the asked condition)."""

    tunes: list[str]
    checks: list[TuneCheck]
    condition: dict[str, str] = field(default_factory=dict)  # the asked {"K": key, "M": meter}, normalized
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "tune-003.mid: why", for files music21 could not write

    @property
    def problems(self) -> list[str | None]:
        """Per tune: why music21 cannot read it, or None."""
        return [check.problem for check in self.checks]

    @property
    def parse_share(self) -> float:
        return sum(problem is None for problem in self.problems) / max(1, len(self.tunes))

    def agreement(self) -> dict[str, float]:
        """Per asked header field ("K", "M"): the share of tunes whose own header carries the asked value."""
        normalizers = {"K": normalize_key, "M": normalize_meter}
        return {name: sum(normalizers[name](header(tune, f"{name}:")) == value for tune in self.tunes)
                / max(1, len(self.tunes)) for name, value in self.condition.items()}

    def body(self) -> dict[str, float]:
        """How the notes follow the asked condition, over the tunes music21 parses: with a key asked, the share
        whose analysed key is the asked one ("key exact") and the asked one or related ("key related"); with a
        meter asked, the share of all their inner bars that last one bar of it ("bars"). Tunes whose analysis
        failed are left out (``unanalysed``), never counted as following the condition or not."""
        parsed = [check for check in self.checks if check.problem is None and check.analysis_problem is None]
        shares: dict[str, float] = {}
        if "K" in self.condition:
            relations = [check.key_relation for check in parsed]
            shares["key exact"] = relations.count("exact") / max(1, len(parsed))
            shares["key related"] = (relations.count("exact") + relations.count("related")) / max(1, len(parsed))
        if "M" in self.condition:
            shares["bars"] = sum(check.bars_in_meter for check in parsed) / max(1, sum(check.bars for check in parsed))
        return shares

    @property
    def unanalysed(self) -> int:
        """Tunes music21 parses but whose key or bar analysis failed."""
        return sum(check.problem is None and check.analysis_problem is not None for check in self.checks)

    def summary(self) -> str:
        parsed = sum(problem is None for problem in self.problems)
        text = f"{len(self.tunes)} tunes: {parsed} parse with music21 ({self.parse_share:.0%})"
        if self.unanalysed:
            text += f", {self.unanalysed} of them not analysable (left out of the shares below)"
        for name, share in self.agreement().items():
            text += f"; header {name}:{self.condition[name]} in {share:.0%}"
        body = self.body()
        if "key exact" in body:
            text += (f"; notes in {self.condition['K']} (music21's key analysis) {body['key exact']:.0%}, "
                     f"same tonic or relative key {body['key related']:.0%}")
        if "bars" in body:
            text += f"; inner bars lasting {self.condition['M']} {body['bars']:.0%}"
        return text


def generate_tunes(checkpoint: Any, count: int, *, condition: str = "", temperature: float = 0.8, top_k: int = 0,
                   top_p: float = 1.0, max_tokens: int = 1500, seed: int = 0, write_header: bool = False) -> list[str]:
    """``count`` tunes from a music checkpoint, each started from the condition's state and stopped at a blank line,
    its title lines moved back before its header (``titles_first``).

    Tunes open with their condition fields (M:, K:; see the music task): the model writes them from its
    conditioned state. With ``write_header`` the asked ones are written for it, as a prompt (in their
    normalised spelling, e.g. "M:2/2" where tunes mostly say "M:C|"), and it goes on from there.
    """
    from .generate import check_sampling, generate

    if count < 1:
        raise SeqlabError(f"--tunes must be at least 1, got {count}")
    check_sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p)
    if checkpoint.config.task.name != "music":
        raise SeqlabError(f"{checkpoint.directory} is a {checkpoint.config.task.name!r} checkpoint; "
                          "generate tunes from one trained with --task music")
    model = checkpoint.model
    state = checkpoint.task.condition_state(model, condition)
    asked = checkpoint.task.parse_condition(condition)
    opening = "" if not write_header else "".join(f"{field}{asked[field[0]]}\n" for field in CONDITION_FIELDS
                                              if asked.get(field[0]))
    tunes = []
    with ProgressReport("tunes", count, console=console_for()) as progress:
        for number in range(count):
            pieces = generate(model, checkpoint.tokenizer, TUNE_START + opening, max_tokens=max_tokens,
                              temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + number, stop="\n\n",
                              state=state)
            tunes.append(titles_first((opening + "".join(pieces)).strip("\n")))  # the model writes T: after K:
            progress.update(number + 1, f"{number + 1} of {count} generated")
    return tunes


def make_music(checkpoint_dir: str | Path, *, tunes: int = 10, out: str | Path | None = None, condition: str = "",
               midi: bool = False, wav: bool = False, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
               max_tokens: int = 1500, seed: int = 0, write_header: bool = False, device: str = "cpu") -> MusicReport:
    """Generate tunes (on ``device``), check each with music21, and write them (.abc, with --midi .mid, with --wav
    .wav) to ``out``."""
    from .train.checkpoint import load_checkpoint

    if (midi or wav) and out is None:
        raise SeqlabError("--midi and --wav write files; give --out DIR")
    if wav and find_synthesiser() is None:
        raise SeqlabError(f"no MIDI synthesiser found for --wav; install one: {SYNTHESISER_PACKAGES}")
    checkpoint = load_checkpoint(checkpoint_dir, device=device)
    generated = generate_tunes(checkpoint, tunes, condition=condition, temperature=temperature, top_k=top_k,
                               top_p=top_p, max_tokens=max_tokens, seed=seed, write_header=write_header)
    asked = checkpoint.task.parse_condition(condition)
    condition = {name: value for name, value in asked.items() if value is not None}
    report = MusicReport(generated, [check_tune(tune, condition) for tune in generated], condition)
    if out is not None:
        directory = Path(out)
        if directory.exists() and not directory.is_dir():
            raise SeqlabError(f"--out {directory} is a file; give a directory")
        directory.mkdir(parents=True, exist_ok=True)
        for number, (tune, problem) in enumerate(zip(generated, report.problems), start=1):
            stem = directory / f"tune-{number:03d}"
            stem.with_suffix(".abc").write_text(with_reference_number(tune, number) + "\n", encoding="utf-8")
            report.files.append(stem.with_suffix(".abc"))
            if not (midi or wav):
                continue
            if problem is not None:
                report.skipped.append(f"{stem.name}.mid skipped: music21 cannot parse the tune ({problem})")
                continue
            try:  # a tune that fails fails alone: the others still get their files
                report.files.append(export_midi(tune, stem.with_suffix(".mid")))
                if wav:
                    report.files.append(export_wav(stem.with_suffix(".mid"), stem.with_suffix(".wav")))
            except SeqlabError as error:
                report.skipped.append(f"{stem.name} skipped: {error}")
    return report
