# Toxiproxy built without a registry: the server compiled on the host from the Go module proxy.
ARG BASE
FROM ${BASE}
COPY toxiproxy /toxiproxy
EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
