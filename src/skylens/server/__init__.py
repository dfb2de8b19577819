"""The HTTP server layer: uvicorn's httptools protocol, bounded, with fast paths.

`launch.http_serving` is what `skylens serve` passes to uvicorn; `protocol.py` is the
protocol (bounds on heads, time and connections; the 501 for unknown methods);
`readinto.py` and `zerocopy.py` are its two fast paths (the ASGI extensions named in
`skylens.asgi_extensions`); `compat.py` checks the uvicorn internals all this uses.
Nothing here knows of images, the API or the configuration file.
"""
