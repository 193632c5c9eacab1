"""The one image decoder: every supported encoding gives the reference pixels.

For rclpy and rosbags messages alike.
"""

import cv2
import numpy as np
import pytest

from social_pose_diffusion.msgs.images import (
    ENCODINGS,
    bgr_to_compressed,
    bgr_to_image,
    compressed_size,
    message_to_bgr,
)
from social_pose_diffusion.sources.bags import ROSBAGS

RNG = np.random.default_rng(4)
BGR = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
GREY = cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)
# 4:2:2 shares colour between two neighbours: pixel pairs of one colour decode without chroma loss.
PAIRS = np.repeat(BGR[:, ::2], 2, axis=1)


def yuv422(bgr, order):
    """Packed 4:2:2 bytes (2 per pixel) of a BGR image by the BT.601 formulas.

    ``order`` is 'uyvy' or 'yuyv'.
    """
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) * 0.564 + 128
    v = (r - y) * 0.713 + 128
    u2 = (u[:, 0::2] + u[:, 1::2]) / 2
    v2 = (v[:, 0::2] + v[:, 1::2]) / 2
    out = np.zeros(bgr.shape[:2] + (2,), np.uint8)
    chroma = np.stack([u2, v2], -1).reshape(bgr.shape[0], -1)
    luma, chroma = np.clip(np.round(y), 0, 255), np.clip(np.round(chroma), 0, 255)
    if order == 'uyvy':
        out[..., 0], out[..., 1] = chroma, luma
    else:
        out[..., 0], out[..., 1] = luma, chroma
    return out


# encoding -> (raw pixel array as the camera sends it, the BGR image it must decode to, tolerance)
CASES = {
    'bgr8': (BGR, BGR, 0),
    '8UC3': (BGR, BGR, 0),
    'rgb8': (BGR[..., ::-1], BGR, 0),
    'bgra8': (np.dstack([BGR, np.full(BGR.shape[:2], 7, np.uint8)]), BGR, 0),
    'rgba8': (np.dstack([BGR[..., ::-1], np.full(BGR.shape[:2], 7, np.uint8)]), BGR, 0),
    'mono8': (GREY, np.dstack([GREY] * 3), 0),
    '8UC1': (GREY, np.dstack([GREY] * 3), 0),
    'mono16': (GREY.astype(np.uint16) * 257, np.dstack([GREY] * 3), 0),
    '16UC1': (GREY.astype(np.uint16) * 257, np.dstack([GREY] * 3), 0),
    'yuv422': (yuv422(PAIRS, 'uyvy'), PAIRS, 24),
    'uyvy': (yuv422(PAIRS, 'uyvy'), PAIRS, 24),
    'yuv422_yuy2': (yuv422(PAIRS, 'yuyv'), PAIRS, 24),
}


def raw_message(pixels, encoding, kit=ROSBAGS, pad=4, bigendian=False):
    """A sensor_msgs/Image of ``pixels`` with ``pad`` bytes after every row (step > row)."""
    data = np.ascontiguousarray(pixels)
    if bigendian:
        data = data.astype('>u2')
    rows = data.view(np.uint8).reshape(data.shape[0], -1)
    padded = np.hstack([rows, np.full((rows.shape[0], pad), 255, np.uint8)])
    return kit.Image(
        header=kit.header(0),
        height=pixels.shape[0],
        width=pixels.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=kit.buffer(padded.tobytes()),
    )


def test_every_supported_encoding_has_a_reference_case():
    assert set(CASES) == set(ENCODINGS)


@pytest.mark.parametrize('encoding', sorted(CASES))
def test_raw_encodings_decode_to_the_reference_pixels(encoding):
    pixels, expected, tolerance = CASES[encoding]
    decoded = message_to_bgr(raw_message(pixels, encoding))
    assert decoded.shape == expected.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= tolerance
    assert decoded.std() > 10  # not a flat (e.g. black) image


def test_big_endian_16_bit_pixels():
    pixels = GREY.astype(np.uint16) * 257
    decoded = message_to_bgr(raw_message(pixels, 'mono16', bigendian=True))
    assert np.array_equal(decoded[..., 0], GREY)


def test_rclpy_messages_decode_like_rosbags_messages():
    from social_pose_diffusion.ros.messages import RCLPY

    for encoding in ('bgr8', 'rgb8', 'mono16', 'uyvy'):
        pixels, _, _ = CASES[encoding]
        assert np.array_equal(
            message_to_bgr(raw_message(pixels, encoding, RCLPY)),
            message_to_bgr(raw_message(pixels, encoding, ROSBAGS)),
        )
    image = cv2.resize(BGR, (64, 48), interpolation=cv2.INTER_LINEAR)  # smooth: jpeg keeps it
    for kit in (RCLPY, ROSBAGS):
        assert np.array_equal(message_to_bgr(bgr_to_image(image, kit.header(0), kit)), image)
        jpeg = message_to_bgr(bgr_to_compressed(image, kit.header(0), kit, quality=100))
        assert np.abs(jpeg.astype(int) - image.astype(int)).mean() < 8


@pytest.mark.parametrize(
    'fields, message',
    [
        ({'encoding': 'bayer_rggb8'}, 'unsupported image encoding'),
        ({'step': 3}, 'shorter than a row'),
        ({'height': 0}, 'empty image'),
        ({'data': b'\x00' * 10}, 'needs'),
    ],
)
def test_bad_raw_images_are_refused_with_the_reason(fields, message):
    msg = raw_message(BGR, 'bgr8')
    for name, value in fields.items():
        setattr(msg, name, ROSBAGS.buffer(value) if name == 'data' else value)
    with pytest.raises(ValueError, match=message):
        message_to_bgr(msg)


def test_the_decoded_size_is_checked_from_the_header_first():
    big = cv2.imencode('.png', np.zeros((2000, 4000, 3), np.uint8))[1].tobytes()
    assert compressed_size(big) == (4000, 2000)
    msg = ROSBAGS.CompressedImage(header=ROSBAGS.header(0), format='png', data=ROSBAGS.buffer(big))
    with pytest.raises(ValueError, match='exceeds the limit'):
        message_to_bgr(msg, max_pixels=1_000_000)
    assert message_to_bgr(msg).shape == (2000, 4000, 3)
    with pytest.raises(ValueError, match='could not be decoded'):
        compressed_size(b'not an image at all')
