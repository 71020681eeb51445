# One image for every role of the fleet: `govfleet worker`, `govfleet api`, `govfleet migrate`, `govfleet reconcile`.
# The image holds no repo-spec: the operator mounts their own at REPO_SPEC_PATH (it names the
# DAO's admins, whose keys only the DAO holds). The repository's .cogni/repo-spec.yaml is the
# demo's, with publicly known keys, which every command here refuses (docs/deployment.md).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY govfleet ./govfleet
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY schedules ./schedules
RUN pip install --no-cache-dir .
ENV REPO_SPEC_PATH=/etc/govfleet/repo-spec.yaml
USER nobody
ENTRYPOINT ["govfleet"]
CMD ["worker"]
