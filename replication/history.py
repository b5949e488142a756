"""The history buffer of generated images (paper §4, after Shrivastava et al.).

The discriminator is shown fakes drawn from the last `pool_size` generated
images rather than only the newest ones (50 per direction, paper §4). The
rule is the reference code's (`util/image_pool.py`), applied to each image of
the batch in order:

- while fewer than `pool_size` images are stored, store the new image and
  return it;
- once full, with probability 0.5 return a stored image chosen uniformly at
  random and store the new image in its place; otherwise return the new image.

Image 2 of a batch sees the buffer as image 1 left it. `pool_size` 0 switches
the buffer off.

Each image reads and writes one slot of the stored images in place. The loop
over a batch's images is unrolled when the step is traced (TensorFlow's
distribution strategies allow no variable update inside a graph loop), so
the batch's size must be known then; the kit's batches drop remainders.

The buffer is TensorFlow state (variables, not Python lists) so it runs
inside a compiled `tf.function`, also with `jit_compile=True`, and is saved
by `tf.train.Checkpoint`. Randomness comes from a stateless seed the caller
passes with each batch (see `draw_choices`), so a resumed run, and every
replica of a distributed one, makes the same choices.
"""

from __future__ import annotations

import tensorflow as tf

HEADS = 1  # a fair coin landing on this shows a stored image (probability 0.5, paper §4)


def draw_choices(seed, batch_size, pool_size: int):
    """The random draws for one batch: (coins, indices), int32, each of shape [batch_size].

    `seed` is a stateless seed, two integers; the trainer passes (its seed,
    the step), so the draws are the same on every replica, the same after a
    resume, and need no random state of their own in the checkpoint.
    `coins` are fair coins, 0 or 1: image i swaps with a stored one when
    coins[i] is 1 (probability 0.5, paper §4). `indices` are uniform in
    [0, pool_size): the slot image i would swap with. Both are drawn for
    every image, whether used or not.

    The coin is an integer draw, not a float compared with 0.5 as in the
    reference code, and the algorithm is fixed to Philox: integers drawn so
    are the same with `jit_compile` on or off.
    """
    seed = tf.cast(seed, tf.int64)
    coins = tf.random.stateless_uniform([batch_size], seed, minval=0, maxval=2, dtype=tf.int32, alg="philox")
    index_seed = tf.random.experimental.stateless_fold_in(seed, 1, alg="philox")
    indices = tf.random.stateless_uniform([batch_size], index_seed, minval=0, maxval=pool_size, dtype=tf.int32, alg="philox")
    return coins, indices


class HistoryBuffer(tf.Module):
    """Up to `pool_size` past generated images, swapped with new ones at random.

    `images` holds the stored images (pool_size, H, W, C) in float32, `count`
    how many of its slots are filled (they fill from slot 0 upwards).
    """

    def __init__(self, pool_size: int, image_shape: tuple, name: str | None = None):
        super().__init__(name=name)
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels); got {image_shape}.")
        self.pool_size = pool_size
        self.image_shape = tuple(int(d) for d in image_shape)
        with self.name_scope:
            # Under tf.distribute every replica computes the same new buffer from the
            # whole global batch; the first replica's copy is the one written.
            first = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.images = tf.Variable(
                tf.zeros((self.pool_size, *self.image_shape), tf.float32),
                trainable=False, name="images", aggregation=first,
            )
            self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="count", aggregation=first)

    def __call__(self, images, seed):
        """The images to show the discriminator in place of `images` (same shape and dtype).

        Like the reference (which stores `image.data`), the result carries no
        gradient back to the generator.
        """
        images = tf.stop_gradient(tf.convert_to_tensor(images))
        if self.pool_size == 0:
            return images
        batch_size = images.shape[0]
        if batch_size is None:
            raise ValueError("the history buffer needs the batch's size when it is traced (batch with drop_remainder=True)")
        coins, indices = draw_choices(seed, batch_size, self.pool_size)
        offered = tf.cast(images, tf.float32)
        count = tf.identity(self.count)
        shown = []
        for i in range(batch_size):  # in order: image i sees the buffer as image i - 1 left it
            image, count = self._offer(offered[i], coins[i], indices[i], count)
            shown.append(image)
        self.count.assign(count)
        return tf.cast(tf.stack(shown), images.dtype)

    def _offer(self, image, coin, index, count):
        """One image through the reference rule; returns (image to show, new count).

        While filling, the image goes to slot `count` and is shown. Once full,
        if the coin is heads the image at slot `index` is shown and the new image
        takes its place; otherwise the new image is shown and nothing changes.
        Only that slot is read and written: the pool is never copied.
        """
        filling = count < self.pool_size
        swap = tf.logical_and(tf.logical_not(filling), tf.equal(coin, HEADS))
        slot = tf.where(filling, count, index)
        previous = tf.gather(self.images, slot)
        kept = tf.where(tf.logical_or(filling, swap), image, previous)
        self.images.scatter_update(tf.IndexedSlices(kept[tf.newaxis], slot[tf.newaxis]))
        shown = tf.where(swap, previous, image)
        return shown, count + tf.cast(filling, tf.int32)
