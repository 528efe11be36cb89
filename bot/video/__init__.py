"""Making a finished video playable inside Discord: probe it, and fit it when it must be.

Discord-free, like the rest of the core. :mod:`bot.video.probe` reads what a file is (PyAV,
whose wheels bundle FFmpeg: no ``ffmpeg`` binary is needed), :mod:`bot.video.plan` decides
what to do with it, :mod:`bot.video.fit` does it (in a worker process),
:mod:`bot.video.fit_pool` runs those workers off the event loop with a line and a time
limit, and :mod:`bot.video.stage` is the one call the job service makes.
"""
