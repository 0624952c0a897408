"""Planning: sharding (TP, PP), arithmetic capacity, the memory budget, the speed model, and the Plan that
puts them together for one (context, kv_dtype, tp)."""
