import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer, mask_tokens, mlm_dataset

WORDS = [f"w{i}" for i in range(200)]
VOCAB = list(RESERVED_TOKENS) + WORDS


def corpus(lines: int, words_per_line: int = 12, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, words_per_line)) for _ in range(lines)]


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


def test_packed_rows_have_cls_sep_and_follow_the_text(tok):
    lines = corpus(40)
    ds = mlm_dataset(lines, tok, sequence_length=16, batch_size=4, shuffle=False, mask_rate=0.15)
    x, y, w = next(iter(ds))
    ids = x["token_ids"].numpy()
    assert ids.shape == (4, 16) and x["mask_positions"].shape == (4, 3)
    assert (ids[:, 0] == tok.cls_id).all() and (ids[:, -1] == tok.sep_id).all()
    np.testing.assert_array_equal(x["padding_mask"].numpy(), 1)
    np.testing.assert_array_equal(x["segment_ids"].numpy(), 0)
    # Undo the masking: put the labels back; the rows are the corpus' token stream in order.
    restored = ids.copy()
    for row in range(4):
        for pos, label, weight in zip(
            x["mask_positions"][row].numpy(),
            y["mlm"][row].numpy(),
            w["mlm"][row].numpy(),
            strict=True,
        ):
            if weight:
                restored[row, pos] = label
    stream = tok(tf.constant(lines)).flat_values.numpy()
    np.testing.assert_array_equal(restored[:, 1:-1].ravel(), stream[: 4 * 14])


def test_masking_follows_80_10_10_and_never_touches_special_tokens(tok):
    rows = tf.RaggedTensor.from_tensor(
        tf.constant(np.random.default_rng(1).integers(5, 205, (400, 62)))
    )
    cls = tf.fill([400, 1], tf.constant(tok.cls_id, tf.int64))
    sep = tf.fill([400, 1], tf.constant(tok.sep_id, tf.int64))
    rows = tf.concat([cls, tf.cast(rows, tf.int64), sep], axis=1)
    masked, positions, labels = mask_tokens(
        rows, tok, max_predictions=64, mask_rate=0.15, seed=[1, 2]
    )
    original = rows.numpy()
    masked = masked.to_tensor().numpy()
    pos = positions.to_list()
    selected = sum(len(p) for p in pos)
    assert abs(selected / original[:, 1:-1].size - 0.15) < 0.02
    became_mask = kept = 0
    for r, row_pos in enumerate(pos):
        assert 0 not in row_pos and 63 not in row_pos  # [CLS] and [SEP] are never selected
        np.testing.assert_array_equal(labels[r].numpy(), original[r, row_pos])
        became_mask += int((masked[r, row_pos] == tok.mask_id).sum())
        kept += int((masked[r, row_pos] == original[r, row_pos]).sum())
        untouched = np.setdiff1d(np.arange(64), row_pos)
        np.testing.assert_array_equal(masked[r, untouched], original[r, untouched])
    assert abs(became_mask / selected - 0.8) < 0.04
    # 10% unchanged plus random replacements that happened to draw the same token.
    assert abs(kept / selected - 0.1) < 0.04


def masks_of_one_pass(ds) -> np.ndarray:
    return np.stack([b[0]["mask_positions"].numpy() for b in ds])


def test_masks_are_drawn_anew_every_epoch(tok):
    # The global seed is set (conftest), as every recipe sets it: stateful random ops inside the
    # map would replay the same masks on every pass; the seed stream must not.
    ds = mlm_dataset(corpus(40), tok, sequence_length=16, batch_size=8, shuffle=False)
    epochs = [masks_of_one_pass(ds) for _ in range(3)]
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert (epochs[a] != epochs[b]).any(axis=(1, 2)).all(), (
            f"epochs {a} and {b} share a batch's masks"
        )


def test_masks_are_reproducible_and_fixed_for_validation(tok):
    lines = corpus(40)

    def build(**kwargs):
        return mlm_dataset(
            lines, tok, sequence_length=16, batch_size=8, shuffle=False, seed=7, **kwargs
        )

    # Same seed, same masks, although the batches are masked by a parallel map.
    np.testing.assert_array_equal(masks_of_one_pass(build()), masks_of_one_pass(build()))
    fixed = build(rerandomize_each_iteration=False)
    np.testing.assert_array_equal(masks_of_one_pass(fixed), masks_of_one_pass(fixed))
    other = mlm_dataset(lines, tok, sequence_length=16, batch_size=8, shuffle=False, seed=8)
    assert (masks_of_one_pass(other) != masks_of_one_pass(build())).any()


def test_mask_tokens_is_a_function_of_its_seed(tok):
    rows = tf.ragged.constant([[2, 10, 11, 12, 13, 14, 15, 16, 3], [2, 20, 21, 3]], tf.int64)
    first = mask_tokens(rows, tok, max_predictions=4, mask_rate=0.5, seed=[3, 4])
    again = mask_tokens(rows, tok, max_predictions=4, mask_rate=0.5, seed=[3, 4])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.to_tensor().numpy(), b.to_tensor().numpy())
    # ceil(0.5 * 7) = 4 and ceil(0.5 * 2) = 1 selections; positions in text order.
    positions = first[1].to_list()
    assert [len(p) for p in positions] == [4, 1] and all(p == sorted(p) for p in positions)
    draws = {
        tuple(mask_tokens(rows, tok, max_predictions=4, mask_rate=0.5, seed=[3, s])[1][0].numpy())
        for s in range(20)
    }
    assert len(draws) > 10


def test_nsp_pairs_are_drawn_anew_every_epoch(tok):
    ds = mlm_dataset(
        corpus(64, words_per_line=5, seed=2),
        tok,
        sequence_length=16,
        batch_size=32,
        nsp=True,
        shuffle=False,
    )
    first, second = ([y["nsp"].numpy() for _, y, _ in ds] for _ in range(2))
    assert any((a != b).any() for a, b in zip(first, second, strict=True))


def test_nsp_pairs_have_segments_labels_and_padding(tok):
    lines = corpus(64, words_per_line=5, seed=2)
    ds = mlm_dataset(lines, tok, sequence_length=16, batch_size=32, nsp=True, seed=0)
    labels = []
    for x, y, w in ds.take(4):
        ids, seg, mask = (x[k].numpy() for k in ("token_ids", "segment_ids", "padding_mask"))
        for r in range(ids.shape[0]):
            real = ids[r, mask[r] == 1]
            seps = np.flatnonzero(real == tok.sep_id)
            assert real[0] == tok.cls_id and len(seps) == 2 and seps[1] == len(real) - 1
            np.testing.assert_array_equal(seg[r, : seps[0] + 1], 0)
            np.testing.assert_array_equal(seg[r, seps[0] + 1 : len(real)], 1)
            assert (ids[r, mask[r] == 0] == tok.pad_id).all()
        labels += y["nsp"].numpy().tolist()
        np.testing.assert_array_equal(w["nsp"].numpy(), 1.0)
    assert 0.3 < np.mean(labels) < 0.7


def test_nsp_true_pairs_are_consecutive_lines(tok):
    lines = [f"w{i} w{i + 1}" for i in range(0, 190, 2)]
    ds = mlm_dataset(
        lines, tok, sequence_length=12, batch_size=16, nsp=True, mask_rate=0.01, max_predictions=1
    )
    x, y, w = next(iter(ds))
    ids, pos, lab = x["token_ids"].numpy(), x["mask_positions"].numpy(), y["mlm"].numpy()
    for r in range(16):
        row = ids[r].copy()
        row[pos[r, 0]] = lab[r, 0]
        a, b = row[1:3], row[4:6]
        assert (b[0] == a[1] + 1) == bool(y["nsp"][r])


def test_bad_corpora_are_clear_errors(tok):
    with pytest.raises(ValueError, match="empty"):
        mlm_dataset(["", "  "], tok)
    with pytest.raises(ValueError, match="fewer than one sequence"):
        mlm_dataset(["w1 w2"], tok, sequence_length=16)
    with pytest.raises(ValueError, match="fewer than one batch"):
        mlm_dataset(corpus(4), tok, sequence_length=16, batch_size=64)
