"""What the services share about the domain: the two contexts a persona lives in, who a request
speaks for (a persona in one context, or an integrator client) and the rules that go with it,
the shape of a handle, and the settings of a service that checks tokens against its replica of
identity's personas.

It sits between kit, the plumbing that knows no domain, and the services: the services and the
gateway import it; it imports kit and nothing of theirs.
"""
