# One image for every role of the fleet: `govfleet worker`, `govfleet api`, `govfleet migrate`, `govfleet reconcile`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY govfleet ./govfleet
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY schedules ./schedules
COPY .cogni ./.cogni
RUN pip install --no-cache-dir .
ENV REPO_SPEC_PATH=/app/.cogni/repo-spec.yaml
USER nobody
ENTRYPOINT ["govfleet"]
CMD ["worker"]
