"""Background work on recorded sessions: render video, extract and index text.

Jobs live in the database with a lease: a worker that dies mid-job (killed,
out of memory, machine lost) leaves a lease that expires, and the next worker
takes the job again. Outputs are published only when complete.
"""
