"""Autobahn|Python's `ticket` authentication against a wirecall server (tests/tests/wamp.rs).

    python ticket.py URL TICKET

Joins `realm1` with authmethods ["ticket"] as authid `alice`, answering the CHALLENGE with
TICKET. Once joined it prints `joined: authid=… authrole=… authmethod=…` and the `caller`
that `Calculator.stats` sees, then waits for the server to end the session. Whenever the
session ends (ABORT before joining, GOODBYE after) it prints `left: <reason URI>`.
"""

import asyncio
import sys

from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession

URL, TICKET = sys.argv[1], sys.argv[2]


class Session(ApplicationSession):
    def onConnect(self):
        self.join(self.config.realm, authmethods=["ticket"], authid="alice")

    def onChallenge(self, challenge):
        assert challenge.method == "ticket", challenge
        return TICKET

    async def onJoin(self, details):
        print(
            f"joined: authid={details.authid} authrole={details.authrole} authmethod={details.authmethod}",
            flush=True,
        )
        stats = await self.call("Calculator.stats")
        print(f"caller: {stats['caller']}", flush=True)

    def onLeave(self, details):
        print(f"left: {details.reason}", flush=True)
        self.disconnect()

    def onDisconnect(self):
        asyncio.get_event_loop().stop()


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
runner = ApplicationRunner(URL, "realm1")
loop.run_until_complete(runner.run(Session, start_loop=False))
# The server ends the session (expiry, refusal); give up after 20 s.
loop.call_later(20, loop.stop)
loop.run_forever()
