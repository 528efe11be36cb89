# pikabot: docker build -t pikabot . && docker run -e DISCORD_TOKEN -e FAL_KEY -v pikabot-data:/app/data pikabot
# Or `docker compose up -d` with docker-compose.yml beside this file.
#
# The base is pinned to the Python the tests run on (3.11.7); bump it with the test runs.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIKABOT_LOG_FORMAT=json \
    PIKABOT_HTTP_PORT=8080

RUN useradd --create-home --uid 10001 pikabot
WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not with
# every change of the code or the README. An empty package of the right name (and an empty
# README, which pyproject.toml names) lets pip resolve and install them from the metadata
# alone; the real code replaces it below.
COPY pyproject.toml ./
RUN mkdir -p bot cogs && touch README.md bot/__init__.py cogs/__init__.py \
    && pip install . \
    && pip uninstall --yes pikabot \
    && rm -rf README.md bot cogs build pikabot.egg-info

COPY README.md LICENSE ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps . && rm -rf build pikabot.egg-info \
    && mkdir -p /app/data && chown pikabot:pikabot /app/data

USER pikabot
VOLUME ["/app/data"]
# The bot's own /healthz (bot/http_listener.py), on 127.0.0.1 inside the container: 503 while
# Discord's gateway or the database is out of reach. Python's urllib, so no curl in the image.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PIKABOT_HTTP_PORT', '8080'), timeout=8)"]
# SIGTERM suspends the running jobs (they carry on at the next start) within about 20 s
# (bot.app.SHUTDOWN_SECONDS): give `docker stop` longer (docker-compose.yml: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["pikabot", "run"]
