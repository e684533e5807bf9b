# Kafka broker (KRaft) built without a registry: Debian base + Debian's JRE 17 + the broker's jars
# fetched from Maven Central on the host. Satisfies the "kafka" contract in chaos/images/__init__.py.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man
COPY libs/ /opt/kafka/libs/
RUN mkdir -p /opt/kafka/config /var/lib/kafka/data
ENV KAFKA_HOME=/opt/kafka
WORKDIR /opt/kafka
