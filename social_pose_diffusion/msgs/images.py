"""sensor_msgs/Image and CompressedImage messages to and from BGR numpy arrays: the one decoder.

CI, the bag tools and the nodes on a robot all run this code (the same
conversions as cv_bridge for the encodings a 360 camera driver publishes).
Readers only use message attributes, so rclpy and rosbags messages work alike;
writers take a :class:`~social_pose_diffusion.msgs.keypoint_cloud.MessageKit`.
Every failure is a ValueError whose message says what was wrong. A compressed
image's size is read from its header before it is decoded, so a small file
that would decode to gigabytes is refused cheaply.
"""

import io
from typing import Any

import cv2
import numpy as np

from social_pose_diffusion.msgs.keypoint_cloud import MessageKit

# The largest frame decoded by default: an 8K equirectangular frame (7680 x 3840) is 29.5 MP.
MAX_PIXELS = 40_000_000

# encoding -> (channels, numpy dtype, OpenCV conversion to BGR or None)
ENCODINGS = {
    'bgr8': (3, np.uint8, None),
    'rgb8': (3, np.uint8, cv2.COLOR_RGB2BGR),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2BGR),
    'mono8': (1, np.uint8, cv2.COLOR_GRAY2BGR),
    '8UC1': (1, np.uint8, cv2.COLOR_GRAY2BGR),
    '8UC3': (3, np.uint8, None),
    'mono16': (1, np.uint16, cv2.COLOR_GRAY2BGR),
    '16UC1': (1, np.uint16, cv2.COLOR_GRAY2BGR),
    'yuv422': (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    'uyvy': (2, np.uint8, cv2.COLOR_YUV2BGR_UYVY),
    'yuv422_yuy2': (2, np.uint8, cv2.COLOR_YUV2BGR_YUY2),
}


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f'empty image ({width}x{height})')
    if width * height > max_pixels:
        raise ValueError(
            f'image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels'
        )


def raw_to_bgr(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: Any,
    is_bigendian: bool = False,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """A uint8 BGR array from the fields of a sensor_msgs/Image."""
    if encoding not in ENCODINGS:
        raise ValueError(
            f'unsupported image encoding {encoding!r} (supported: {", ".join(ENCODINGS)})'
        )
    channels, dtype, conversion = ENCODINGS[encoding]
    _check_size(width, height, max_pixels)
    row = width * channels * np.dtype(dtype).itemsize
    if step < row:
        raise ValueError(
            f'step {step} is shorter than a row of {width} {encoding} pixels ({row} bytes)'
        )
    buf = np.frombuffer(memoryview(data), np.uint8)
    if buf.size < step * height:
        raise ValueError(
            f'image data holds {buf.size} bytes, {width}x{height} {encoding} '
            f'with step {step} needs {step * height}'
        )
    rows = buf[: step * height].reshape(height, step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dtype)
    if dtype == np.uint16:
        if is_bigendian:
            pixels = pixels.byteswap()
        pixels = (pixels >> 8).astype(np.uint8)
    pixels = (
        pixels.reshape(height, width, channels) if channels > 1 else pixels.reshape(height, width)
    )
    return np.ascontiguousarray(pixels if conversion is None else cv2.cvtColor(pixels, conversion))


def compressed_size(data: Any) -> tuple[int, int]:
    """``(width, height)`` from a compressed image's header, without decoding it."""
    from PIL import Image, UnidentifiedImageError

    buf = bytes(memoryview(data))
    if not buf:
        raise ValueError('empty compressed image')
    try:
        with Image.open(io.BytesIO(buf)) as img:
            return img.size
    except UnidentifiedImageError:  # its text names an in-memory object, not the data
        raise ValueError(
            f'compressed image of {len(buf)} bytes could not be decoded: not an image format'
        ) from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f'compressed image of {len(buf)} bytes could not be decoded: {exc}'
        ) from None


def compressed_to_bgr(data: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A uint8 BGR array from a sensor_msgs/CompressedImage payload (jpeg or png)."""
    _check_size(*compressed_size(data), max_pixels)
    buf = np.frombuffer(memoryview(data), np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'compressed image of {buf.size} bytes could not be decoded')
    return bgr


def message_to_bgr(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 pixels of an Image or CompressedImage message (rclpy or rosbags)."""
    if hasattr(msg, 'format'):
        return compressed_to_bgr(msg.data, max_pixels)
    return raw_to_bgr(
        msg.encoding,
        int(msg.height),
        int(msg.width),
        int(msg.step),
        msg.data,
        bool(msg.is_bigendian),
        max_pixels,
    )


def bgr_to_jpeg(bgr: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR image, as image_transport's compressed plugin sends them."""
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('jpeg encoding failed')
    return buf.tobytes()


def bgr_to_image(bgr: np.ndarray, header: Any, kit: MessageKit, encoding: str = 'bgr8') -> Any:
    """A sensor_msgs/Image of a uint8 BGR array (``encoding`` is written as given)."""
    bgr = np.ascontiguousarray(bgr)
    return kit.Image(
        header=header,
        height=int(bgr.shape[0]),
        width=int(bgr.shape[1]),
        encoding=encoding,
        is_bigendian=0,
        step=int(bgr.strides[0]),
        data=kit.buffer(bgr.tobytes()),
    )


def bgr_to_compressed(bgr: np.ndarray, header: Any, kit: MessageKit, quality: int = 85) -> Any:
    """A jpeg sensor_msgs/CompressedImage of a BGR array."""
    return kit.CompressedImage(
        header=header,
        format='bgr8; jpeg compressed bgr8',
        data=kit.buffer(bgr_to_jpeg(bgr, quality)),
    )
