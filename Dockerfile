# pikabot: docker build -t pikabot . && docker run -e DISCORD_TOKEN -e FAL_KEY -v pikabot-data:/app/data pikabot
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIKABOT_LOG_FORMAT=json

RUN useradd --create-home --uid 10001 pikabot
WORKDIR /app

COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install . && mkdir -p /app/data && chown pikabot:pikabot /app/data

USER pikabot
VOLUME ["/app/data"]
STOPSIGNAL SIGTERM
CMD ["pikabot", "run"]
