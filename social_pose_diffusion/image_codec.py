"""sensor_msgs/Image and CompressedImage payloads to and from BGR numpy arrays.

The same conversions as cv_bridge for the encodings a 360 camera driver
publishes; used where cv_bridge is not importable and by the bag tools.
Every failure is a ValueError with a message that says what was wrong.
"""
import cv2
import numpy as np

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


def image_to_bgr(encoding, height, width, step, data, is_bigendian=False):
    """A uint8 BGR array from the fields of a sensor_msgs/Image."""
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r} (supported: {", ".join(ENCODINGS)})')
    channels, dtype, conversion = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ValueError(f'empty image ({width}x{height})')
    row = width * channels * np.dtype(dtype).itemsize
    if step < row:
        raise ValueError(f'step {step} is shorter than a row of {width} {encoding} pixels ({row} bytes)')
    buf = np.frombuffer(memoryview(data), np.uint8)
    if buf.size < step * height:
        raise ValueError(f'image data holds {buf.size} bytes, {width}x{height} {encoding} '
                         f'with step {step} needs {step * height}')
    rows = buf[:step * height].reshape(height, step)[:, :row]
    pixels = np.ascontiguousarray(rows).view(dtype)
    if dtype == np.uint16:
        if is_bigendian:
            pixels = pixels.byteswap()
        pixels = (pixels >> 8).astype(np.uint8)
    pixels = pixels.reshape(height, width, channels) if channels > 1 else pixels.reshape(height, width)
    return np.ascontiguousarray(pixels if conversion is None else cv2.cvtColor(pixels, conversion))


def compressed_to_bgr(data):
    """A uint8 BGR array from a sensor_msgs/CompressedImage payload (jpeg or png)."""
    buf = np.frombuffer(memoryview(data), np.uint8)
    if buf.size == 0:
        raise ValueError('empty compressed image')
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'compressed image of {buf.size} bytes could not be decoded')
    return bgr


def bgr_to_jpeg(bgr, quality=85):
    """JPEG bytes of a BGR image, as image_transport's compressed plugin sends them."""
    ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('jpeg encoding failed')
    return buf.tobytes()
