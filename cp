ingest checkpoint 2
fingerprint_bytes 4096
fingerprint aa8d5c34402f62d1
input_file -
input_bytes 192525
input_lines 10201
output_bytes 4890
output_file 65024:10035227 /tmp/.tmpxHNGbi/out.log
rejects_bytes -
rejects_file -
finished 1
