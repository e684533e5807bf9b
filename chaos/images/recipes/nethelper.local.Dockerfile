# Helper for network and disk faults, built without a registry: Debian base + iptables (nft and legacy
# backends), iproute2 (tc, ss), ping, netcat, and chaos-netem (user-space netem over NFQUEUE, compiled
# here from chaos-netem.c). Runs with only CAP_NET_ADMIN, in a target's network namespace.
ARG BASE
FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libnetfilter-queue-dev \
 && rm -rf /var/lib/apt/lists/*
COPY chaos-netem.c /src/chaos-netem.c
RUN gcc -O2 -Wall -Wextra -o /chaos-netem /src/chaos-netem.c -lnetfilter_queue -lnfnetlink

FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      iptables iproute2 iputils-ping netcat-openbsd libnetfilter-queue1 \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
 && cp /usr/bin/ping /usr/bin/ping.nocap && mv /usr/bin/ping.nocap /usr/bin/ping
# (the copy drops ping's file capability cap_net_raw, which a container without NET_RAW cannot exec;
#  ping then uses an ICMP datagram socket, which net.ipv4.ping_group_range allows in containers)
COPY --from=build /chaos-netem /usr/local/bin/chaos-netem
CMD ["sleep", "infinity"]
