"""The history buffer against a plain-Python copy of the reference rule fed the same draws."""

import numpy as np
import pytest
import tensorflow as tf

from replication.history import HistoryBuffer, draw_choices

IMAGE_SHAPE = (2, 2, 1)


def numbered_images(first, count, shape=IMAGE_SHAPE):
    """`count` images, image k filled with the value first + k, so every image is recognisable."""
    values = np.arange(first, first + count, dtype=np.float32)
    return np.broadcast_to(values[:, None, None, None], (count, *shape)).copy()


def reference_pool(pool, pool_size, images, coins, indices):
    """util/image_pool.py's query(), with its random draws replaced by given ones.

    The reference swaps when random.uniform(0, 1) > 0.5; here a coin of 1 does.
    `pool` is a Python list, changed in place. Returns the images to show.
    """
    shown = []
    for image, coin, index in zip(images, coins, indices):
        if len(pool) < pool_size:
            pool.append(image)
            shown.append(image)
        elif coin == 1:
            shown.append(pool[index])
            pool[index] = image
        else:
            shown.append(image)
    return np.stack(shown)


def run_both(pool_size, batches, seed, call=None):
    """Push `batches` through a HistoryBuffer and through `reference_pool` with identical draws.

    Batch k is drawn with the stateless seed (seed, k), as the trainer
    passes (its seed, the step). Returns (buffer outputs, reference outputs,
    buffer, reference pool list).
    """
    buffer = HistoryBuffer(pool_size, IMAGE_SHAPE)
    call = call or buffer
    pool = []
    got, want = [], []
    for k, batch in enumerate(batches):
        got.append(call(tf.constant(batch), tf.constant([seed, k])).numpy())
        coins, indices = draw_choices([seed, k], len(batch), pool_size)
        want.append(reference_pool(pool, pool_size, list(batch), coins.numpy(), indices.numpy()))
    return got, want, buffer, pool


def test_draws_are_fair_coins_then_indices_in_range():
    coins, indices = draw_choices([3, 0], 1000, 7)
    assert coins.shape == (1000,) and indices.shape == (1000,)
    assert coins.dtype == tf.int32 and indices.dtype == tf.int32
    assert set(coins.numpy().tolist()) == {0, 1}
    assert 0.45 < coins.numpy().mean() < 0.55
    assert set(indices.numpy().tolist()) == set(range(7))


def test_draws_depend_on_the_seed_only():
    first = [d.numpy() for d in draw_choices([3, 5], 64, 50)]
    again = [d.numpy() for d in draw_choices([3, 5], 64, 50)]
    other = [d.numpy() for d in draw_choices([3, 6], 64, 50)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_draws_are_the_same_under_xla():
    draw = tf.function(lambda seed: draw_choices(seed, 64, 50), jit_compile=True)
    for step in range(3):
        for eager, compiled in zip(draw_choices([8, step], 64, 50), draw(tf.constant([8, step]))):
            assert np.array_equal(eager.numpy(), compiled.numpy())


def test_filling_phase_returns_the_inputs_and_stores_them_in_order():
    buffer = HistoryBuffer(4, IMAGE_SHAPE)
    for k in range(4):
        image = numbered_images(10 + k, 1)
        assert np.array_equal(buffer(image, [0, k]).numpy(), image)
        assert int(buffer.count) == k + 1
    assert np.array_equal(buffer.images.numpy(), numbered_images(10, 4))


def test_matches_reference_rule_batch_size_one():
    batches = [numbered_images(k, 1) for k in range(40)]
    got, want, buffer, pool = run_both(5, batches, seed=11)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    assert np.array_equal(buffer.images.numpy(), np.stack(pool))
    assert int(buffer.count) == 5
    # Not a trivial pass-through: some returned images were stored ones.
    assert any(not np.array_equal(g, b) for g, b in zip(got, batches))


def test_matches_reference_rule_batch_size_three_sequentially():
    # Pool of 4 with batches of 3: the second batch fills the last slot with its
    # first image, then its next two images already face a full pool.
    batches = [numbered_images(3 * k, 3) for k in range(20)]
    got, want, buffer, pool = run_both(4, batches, seed=5)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    assert np.array_equal(buffer.images.numpy(), np.stack(pool))
    assert np.array_equal(got[0], batches[0])
    assert np.array_equal(got[1][0], batches[1][0])


def test_an_image_can_swap_out_one_stored_earlier_in_its_own_batch():
    # Pool of 1, full with 0; batch (1, 2) with both coins heads: image 1 shows 0
    # and takes the slot, image 2 then shows 1 (stored a moment before).
    buffer = HistoryBuffer(1, IMAGE_SHAPE)
    buffer.images.assign(numbered_images(0, 1))
    buffer.count.assign(1)
    for seed in range(100):  # a seed whose first two coins are both heads
        if np.all(draw_choices([seed, 0], 2, 1)[0].numpy() == 1):
            break
    shown = buffer(numbered_images(1, 2), [seed, 0]).numpy()
    assert shown[:, 0, 0, 0].tolist() == [0.0, 1.0]
    assert buffer.images.numpy()[0, 0, 0, 0] == 2.0


def test_about_half_are_stored_images_once_full():
    buffer = HistoryBuffer(10, (1, 1, 1))
    buffer(numbered_images(0, 10, (1, 1, 1)), [2, 0])
    step = tf.function(buffer)  # 20 batches of 100: the buffer's loop is unrolled over a batch
    batches = [numbered_images(1000 + 100 * k, 100, (1, 1, 1)) for k in range(20)]
    shown = np.concatenate([step(tf.constant(batch), tf.constant([2, 1 + k])).numpy() for k, batch in enumerate(batches)])
    new = np.concatenate(batches)
    stored_shown = np.mean(shown != new)
    # Binomial(2000, 0.5): standard deviation ~ 0.011, so this holds far out in the tails.
    assert 0.45 < stored_shown < 0.55
    # Everything shown was either the new image or one offered before it.
    assert np.all(shown[:, 0, 0, 0] <= new[:, 0, 0, 0])


def test_pool_size_zero_passes_the_batch_through():
    buffer = HistoryBuffer(0, IMAGE_SHAPE)
    images = tf.constant(numbered_images(7, 3))
    assert np.array_equal(buffer(images, [0, 0]).numpy(), images.numpy())
    assert buffer.images.shape == (0, *IMAGE_SHAPE)


@pytest.mark.parametrize("dtype", [tf.float16, tf.float32])
def test_output_keeps_input_dtype_and_stores_float32(dtype):
    buffer = HistoryBuffer(2, IMAGE_SHAPE)
    out = buffer(tf.constant(numbered_images(1, 3), dtype), [0, 0])
    assert out.dtype == dtype and out.shape == (3, *IMAGE_SHAPE)
    assert buffer.images.dtype == tf.float32


@pytest.mark.parametrize("jit_compile", [True, False])
def test_compiled_matches_eager(jit_compile):
    batches = [numbered_images(2 * k, 2) for k in range(12)]
    eager, want, _, _ = run_both(3, batches, seed=9)
    compiled_buffer = HistoryBuffer(3, IMAGE_SHAPE)
    step = tf.function(compiled_buffer, jit_compile=jit_compile)
    compiled = [step(tf.constant(batch), tf.constant([9, k])).numpy() for k, batch in enumerate(batches)]
    for c, e, w in zip(compiled, eager, want):
        assert np.array_equal(c, e)
        assert np.array_equal(c, w)
    assert int(compiled_buffer.count) == 3


def test_a_compiled_buffer_without_the_batch_size_says_it_needs_it():
    buffer = HistoryBuffer(50, (8, 8, 3))
    with pytest.raises(ValueError, match="needs the batch's size"):
        tf.function(buffer).get_concrete_function(tf.TensorSpec((None, 8, 8, 3)), tf.TensorSpec((2,), tf.int32))


@pytest.mark.parametrize("pool_size", [0, 2])
def test_no_gradient_flows_back_through_the_buffer(pool_size):
    buffer = HistoryBuffer(pool_size, IMAGE_SHAPE)
    fake = tf.Variable(numbered_images(1, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(buffer(fake * 2.0, [0, 0]))
    assert tape.gradient(loss, fake) is None


def test_variables_exist_before_the_first_call():
    buffer = HistoryBuffer(50, (8, 8, 3))
    names = sorted(v.name for v in buffer.variables)
    assert len(names) == 2
    assert buffer.images.shape == (50, 8, 8, 3) and not buffer.images.trainable
    assert int(buffer.count) == 0 and buffer.trainable_variables == ()


def test_checkpoint_round_trip_restores_images_count_and_future_choices(tmp_path):
    buffer = HistoryBuffer(3, IMAGE_SHAPE)
    for k in range(5):
        buffer(numbered_images(k, 1), [4, k])
    saved_images = buffer.images.numpy().copy()
    path = tf.train.Checkpoint(pool=buffer).write(str(tmp_path / "ckpt"))
    later = [buffer(numbered_images(100 + k, 1), [4, 5 + k]).numpy() for k in range(10)]

    restored = HistoryBuffer(3, IMAGE_SHAPE)
    tf.train.Checkpoint(pool=restored).read(path).assert_consumed()
    assert int(restored.count) == 3
    assert np.array_equal(restored.images.numpy(), saved_images)
    resumed = [restored(numbered_images(100 + k, 1), [4, 5 + k]).numpy() for k in range(10)]
    for a, b in zip(later, resumed):
        assert np.array_equal(a, b)
    assert np.array_equal(restored.images.numpy(), buffer.images.numpy())


def test_checkpoint_restores_stored_images_exactly(tmp_path):
    buffer = HistoryBuffer(2, IMAGE_SHAPE)
    buffer(numbered_images(5, 1), [0, 0])
    path = tf.train.Checkpoint(pool=buffer).write(str(tmp_path / "ckpt"))
    restored = HistoryBuffer(2, IMAGE_SHAPE)
    tf.train.Checkpoint(pool=restored).read(path).assert_consumed()
    assert int(restored.count) == 1
    assert np.array_equal(restored.images.numpy()[0], numbered_images(5, 1)[0])
    assert np.array_equal(restored.images.numpy()[1], np.zeros(IMAGE_SHAPE, np.float32))
