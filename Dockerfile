# Commentguard: one image for the API (the default command), the worker, beat and the
# migrations; docker-compose.yml runs each with its own command.
#   docker build -t commentguard .
#   docker run --env-file .env -p 8000:8000 commentguard
# gunicorn reads WEB_CONCURRENCY (worker processes) and GUNICORN_CMD_ARGS (any other
# option, e.g. "--threads 4") from the environment.
# Metrics (docs/metrics.md): GET /metrics on 8000; a Celery worker serves its own on
# COMMENTGUARD_WORKER_METRICS_PORT (9808 in docker-compose.yml).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtual environment is copied whole into the runtime stage: no build tools, caches or
# sources end up there.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies in a layer of their own, so that a code change does not reinstall them.
COPY pyproject.toml README.md* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY service ./service
COPY models ./models
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-deps .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    # One gunicorn process per core, each with 4 threads (gthread, keep-alive): threads
    # overlap the database and broker round trips that a sync worker idles through
    # (bench/pipeline.py measured about 1.5x the throughput of 4 sync workers on 2 cores).
    WEB_CONCURRENCY=2 \
    GUNICORN_CMD_ARGS="--threads 4" \
    # Prometheus multiprocess mode: each process of a container's tree (gunicorn's
    # workers, a Celery pool) counts in files here, and a scrape adds them up; the tree's
    # parent empties it at start. One tree per container; mount a tmpfs here for speed.
    PROMETHEUS_MULTIPROC_DIR=/tmp/commentguard-metrics
RUN useradd --system --uid 10001 --create-home --home-dir /home/commentguard commentguard
COPY --from=build /opt/venv /opt/venv
USER commentguard
# Relative paths in the settings resolve in a directory this user may write.
WORKDIR /home/commentguard
EXPOSE 8000 9808
CMD ["gunicorn", "--config", "python:service.gunicorn_conf", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "service.app:create_app()"]
