set -e
cd /work/main
for grid in $GRIDS; do
 for w in $WS; do
  printf '[fista-tv]\ntv_weight = %s\n' $w > /work/scratch/tvgrid/w_$w.toml
  flag=""; [ $grid = native ] && flag="--native-grid"
  ./target/release/medsgm bench --out /work/scratch/tvgrid/out_${grid}_$w recon --task ct --views 23 --data /work/scratch/tvgrid/heads --methods fista-tv --model models/ct_head_whole/model.safetensors --config /work/scratch/tvgrid/w_$w.toml --n 2 --repeats 1 $flag > /work/scratch/tvgrid/log_${grid}_$w.txt 2>&1
  echo "$grid $w $(grep -i 'fista' /work/scratch/tvgrid/log_${grid}_$w.txt | tail -1)"
 done
done
