"""Day 24's preference pairs: the rule holds and no train pair touches a test question."""
import json

from helpers import config, corpus, facts

ROWS = [json.loads(line) for line in open(config.DATA_DIR / "preferences" / "pairs.jsonl", encoding="utf-8")]
QUESTIONS = {q["id"]: q for q in corpus.load_questions()}


def test_train_pairs_use_no_test_question_or_gold_sentence():
    test = [q for q in QUESTIONS.values() if q["split"] == "test"]
    test_questions = {corpus.normalise(q["question"]) for q in test}
    test_gold = {corpus.normalise(s) for q in test for _, s in corpus.gold_refs(q)}
    train = [r for r in ROWS if r["split"] == "train"]
    assert train, "no train pairs"
    for r in train:
        assert QUESTIONS[r["question_id"]]["split"] == "dev", f"{r['id']}: train pair from a non-dev question"
        assert corpus.normalise(r["question"]) not in test_questions, f"{r['id']}: a test question in training"
        text = corpus.normalise(r["context"] + " " + r["chosen"] + " " + r["rejected"])
        leaked = [s for s in test_gold if s in text]
        assert not leaked, f"{r['id']}: contains a test gold sentence: {leaked[0][:60]}"


def test_heldout_pairs_come_from_test_questions():
    held = [r for r in ROWS if r["split"] == "heldout"]
    assert held and all(QUESTIONS[r["question_id"]]["split"] == "test" for r in held), "held-out pair from dev"


def test_chosen_is_grounded_and_rejected_is_not():
    for r in ROWS:
        assert r["chosen"] != r["rejected"], f"{r['id']}: chosen equals rejected"
        assert r["chosen"] == QUESTIONS[r["question_id"]]["answer"], f"{r['id']}: chosen is not the golden answer"
        if r["kind"] == "swapped_fact":
            assert facts.unsupported_facts(r["rejected"], r["context"]), f"{r['id']}: swapped answer still supported"


def test_ids_unique_and_fields():
    assert len({r["id"] for r in ROWS}) == len(ROWS), "duplicate ids"
    keys = {"id", "question_id", "split", "kind", "context", "question", "chosen", "rejected"}
    assert all(set(r) == keys for r in ROWS), "unexpected fields"
