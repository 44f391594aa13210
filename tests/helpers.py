"""Small hand-written corpora for tests (the real data stays in ../shared/data)."""

import json
from pathlib import Path

EN = [
    ("the film was wonderful and moving", "positive"),
    ("a delightful, charming story", "positive"),
    ("great acting and a clever script", "positive"),
    ("i loved every minute of it", "positive"),
    ("the food was fresh and delicious", "positive"),
    ("excellent service, friendly staff", "positive"),
    ("a boring, tedious mess", "negative"),
    ("the plot made no sense at all", "negative"),
    ("terrible acting and a dull script", "negative"),
    ("i hated every minute of it", "negative"),
    ("the food was cold and bland", "negative"),
    ("rude staff and slow service", "negative"),
]
KO = ["영화가 정말 훌륭하고 감동적이었다", "지루하고 엉망인 영화", "음식이 신선하고 맛있었다", "직원이 불친절하고 서비스가 느렸다", "최고의 연기와 각본"]
AR = ["كان الفيلم رائعا ومؤثرا", "فيلم ممل وسيء", "الطعام طازج ولذيذ", "الخدمة بطيئة والموظفون غير ودودين"]
NLI_EN = [
    ("a man is playing a guitar", "a person plays music", "entailment"),
    ("a man is playing a guitar", "the man is asleep", "contradiction"),
    ("a man is playing a guitar", "the man is a professional", "neutral"),
    ("two dogs run in the park", "animals are outside", "entailment"),
    ("two dogs run in the park", "the dogs are sleeping indoors", "contradiction"),
    ("two dogs run in the park", "the dogs are chasing a ball", "neutral"),
]
NLI_KO = [("한 남자가 기타를 치고 있다", "사람이 음악을 연주한다"), ("개 두 마리가 공원에서 뛰고 있다", "개들이 실내에서 자고 있다")]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def sentiment_files(tmp_path: Path) -> dict:
    return {
        "en": write_jsonl(tmp_path / "en.jsonl", [{"text": t, "label": y} for t, y in EN]),
        "ko": write_jsonl(tmp_path / "ko.jsonl", [{"text": t} for t in KO]),
        "ar": write_jsonl(tmp_path / "ar.jsonl", [{"text": t} for t in AR]),
    }


def nli_files(tmp_path: Path) -> dict:
    return {
        "en": write_jsonl(tmp_path / "nli_en.jsonl", [{"premise": p, "hypothesis": h, "label": y} for p, h, y in NLI_EN]),
        "ko": write_jsonl(tmp_path / "nli_ko.jsonl", [{"premise": p, "hypothesis": h} for p, h in NLI_KO]),
    }


def run_cli(args, capsys):
    """Run the xite CLI in-process: (exit code, stdout, stderr)."""
    from xite.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
