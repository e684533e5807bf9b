# The reference pipeline on the official Python image, installed offline from the host's wheelhouse.
FROM python:3.11.14-slim-bookworm
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \
 && rm -rf /tmp/wheels
COPY app/ /app/
ENV PYTHONPATH=/app:/app/gen PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
CMD ["python", "-m", "refpipe.ingest"]
