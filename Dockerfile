# Production image: Daphne serving HTTP and websockets, static files via WhiteNoise.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install .

COPY . .
# collectstatic reads no secrets; keep the hashed, compressed files in the image.
RUN SUPPORTGROUPS_IGNORE_DOTENV=1 python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 1000 --home /app supportgroups \
    && chown -R supportgroups /app/var

USER supportgroups
EXPOSE 8000
# -v 0: no access log, so group URLs and client IPs are not written to container logs.
CMD ["python", "-m", "supportgroups.serve", "-v", "0", "-b", "0.0.0.0", "-p", "8000", "supportgroups.asgi:application"]
